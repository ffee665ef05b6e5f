"""`python -m slimbench.testing [DIR]`: write the README's worked example (a reviews CSV and a tiny
fine-tuned checkpoint) into DIR (default: example)."""

import sys
from pathlib import Path

from slimbench.testing import write_example

target = Path(sys.argv[1] if len(sys.argv) > 1 else "example")
model_dir, data = write_example(target)
print(f"wrote {data} ({len(data.read_text().splitlines()) - 1} rows) and {model_dir} (a tiny BERT "
      "sentiment classifier trained on it: your own fine-tuned checkpoint)")
