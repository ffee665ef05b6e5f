"""Write the Amazon product-review snippets of Hutto & Gilbert (ICWSM 2014) as a CSV a new user
would bring: `review,sentiment` with sentiment positive/negative, keeping |mean rating| >= 0.5 (the
same rule as the default movie-review set). The file comes with the vaderSentiment 3.3.2 sdist that
slimbench already fetches (`slimbench build` puts it in the cache's assets folder).

    python experiments/new-user/amazon_csv.py [ASSETS_DIR] [OUT_CSV]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def main(assets: Path, out: Path) -> int:
    source = assets / "amazonReviewSnippets_GroundTruth.txt"
    rows = []
    for line in source.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 3:
            continue
        rating, text = float(parts[1]), parts[2].strip()
        if abs(rating) >= 0.5 and text:
            rows.append((text, "positive" if rating > 0 else "negative"))
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows(rows)
    pos = sum(label == "positive" for _, label in rows)
    print(f"wrote {out}: {len(rows)} reviews ({pos} positive, {len(rows) - pos} negative)")
    return 0


if __name__ == "__main__":
    default = Path.home() / ".cache" / "slimbench" / "assets" / "vaderSentiment-3.3.2"
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default,
                  Path(sys.argv[2]) if len(sys.argv) > 2 else Path("amazon-reviews.csv")))
