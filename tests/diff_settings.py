"""The hypothesis budget of the differential tests (compiled engine vs Cerberus vs jsonschema).

INGEST_DIFF_EXAMPLES raises the budget for a deeper local hunt (and DIFF_RANDOM=1 a new seed).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("INGEST_DIFF_EXAMPLES", "400"))
SETTINGS = settings(max_examples=EXAMPLES, derandomize=not os.environ.get("DIFF_RANDOM"),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
