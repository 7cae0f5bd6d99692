"""Where the shared contract examples and real traces live: `shared/` beside the checkout."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXAMPLES = SHARED / "contract" / "examples.jsonl"
OLIST = SHARED / "data" / "olist-br" / "trace.jsonl.gz"
