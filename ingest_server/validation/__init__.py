"""Row validation: Cerberus defines what is valid; a compiled engine checks rows fast.

``definition`` (the Cerberus validator and coercers), ``translate`` (cQube spec -> Cerberus
schema), ``keywords`` and ``formats`` (the JSON Schema keywords Cerberus lacks, ajv-formats),
``codes`` (stable error codes and messages), ``compiler`` (the fast engine).
"""

from .codes import code_for, message_for, to_row_error
from .compiler import CompiledSchema, BoundSchema, compile_schema, get_compiled
from .definition import Extensions, IngestValidator, check_cerberus_schema, make_validator_class
from .translate import translate_cqube_spec

__all__ = [
    "CompiledSchema", "Extensions", "IngestValidator", "BoundSchema", "check_cerberus_schema",
    "code_for", "compile_schema", "get_compiled", "make_validator_class", "message_for",
    "to_row_error", "translate_cqube_spec",
]
