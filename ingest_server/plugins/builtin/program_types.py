"""The cQube program types: event, dimension and dataset CSVs, and national-programme ZIPs."""

from ingest_server import hookimpl
from ingest_server.plugins.programs import ProgramType

ERROR_KEY = "ingestion_error/{program}/{date}/{name}.{upload_id}.errors.csv"


@hookimpl
def register_program_types():
    return [
        ProgramType(
            name="event", route="new_programs", spec_kind="event",
            valid_key="process_input/{program}/{date}/{name}-event.{upload_id}.data.csv",
            error_key=ERROR_KEY, description="State programme event CSV"),
        ProgramType(
            name="dimension", route="new_programs", spec_kind="dimension", needs_program=False,
            valid_key="process_input/dimensions/{date}/{name}-dimension.{upload_id}.data.csv",
            error_key=ERROR_KEY, description="Dimension (master data) CSV"),
        ProgramType(
            name="dataset", route="new_programs", spec_kind="dataset",
            valid_key="process_input/datasets/{date}/{name}-dataset.{upload_id}.data.csv",
            error_key=ERROR_KEY, description="Dataset CSV"),
        ProgramType(
            name="national", route="national_programs", spec_kind="event", file_kinds=("zip",),
            needs_program=False,
            valid_key="emission/{date}/{name}.{upload_id}.csv",
            error_key="emission-error/{date}/{name}.{upload_id}.errors.csv",
            description="National programme ZIP of <name>.csv files"),
    ]
