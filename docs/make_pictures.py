"""Redraw the pictures of the README from a ningbo-2026 run (not part of the tests).

    python docs/make_pictures.py [OUTDIR]

``docs/map.png`` is the run's printable map scaled to 1,400 pixels wide; ``docs/report.png`` is
the first page of ``report.docx`` as LibreOffice renders it (``soffice`` and ``pdftoppm`` must
be installed: Debian ``libreoffice-writer-nogui`` and ``poppler-utils``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from carecheck.pipeline import run_scenario

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "outputs" / "ningbo-2026"
    if not (out / "report.docx").exists():
        run_scenario(ROOT / "scenarios" / "ningbo-2026.yaml", out=out)
    with Image.open(out / "map.png") as image:
        width = 1400
        image.convert("RGB").resize((width, round(image.height * width / image.width))).save(
            DOCS / "map.png", optimize=True
        )
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["soffice", "--headless", "--convert-to", "pdf", "--outdir", tmp, out / "report.docx"],
            check=True,
            capture_output=True,
        )
        first = Path(tmp) / "page"
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "80",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                Path(tmp) / "report.pdf",
                first,
            ],
            check=True,
        )
        with Image.open(first.with_suffix(".png")) as page:
            page.convert("RGB").save(DOCS / "report.png", optimize=True)
    print(f"written: {DOCS / 'map.png'}, {DOCS / 'report.png'}")


if __name__ == "__main__":
    main()
