"""Print every event schema as one JSON document (``docs/events.schema.json``).

    python -m storeedge.schemas > docs/events.schema.json
"""
import json
import sys

from storeedge.events import all_schemas

if __name__ == "__main__":
    json.dump(all_schemas(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
