"""Rebuild the teaching world's glyph atlas from the pinned npm package ``emoji-datasource-google@16.0.0``.

    npm pack emoji-datasource-google@16.0.0          # → emoji-datasource-google-16.0.0.tgz (74 MB)
    .venv/bin/python tools/build_emoji_atlas.py emoji-datasource-google-16.0.0.tgz

Writes ``helpers/teaching/atlas/emoji_atlas.png`` (one 64x64 RGBA cell per object, in the order of
``helpers.teaching.scenes.OBJECTS``) and ``emoji_atlas.json`` (names, source files, the sha256 of the PNG and
of the tarball). The glyphs are Google's Noto Color Emoji images, Apache-2.0 (see ``atlas/NOTICE``). Nothing in
the package downloads anything at run time; this script is only for maintainers.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PACKAGE = "emoji-datasource-google"
VERSION = "16.0.0"
CELL = 64


def build(tarball: Path, out_dir: Path) -> dict:
    from PIL import Image

    from helpers.teaching.scenes import ATLAS_COLUMNS, OBJECTS

    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    with tarfile.open(tarball) as tar:
        meta = json.loads(tar.extractfile("package/package.json").read())
        if meta.get("version") != VERSION:
            raise SystemExit(f"expected {PACKAGE} {VERSION}, got {meta.get('version')}")
        rows = -(-len(OBJECTS) // ATLAS_COLUMNS)
        sheet = Image.new("RGBA", (ATLAS_COLUMNS * CELL, rows * CELL), (0, 0, 0, 0))
        for i, obj in enumerate(OBJECTS):
            data = tar.extractfile(f"package/img/google/64/{obj.source}").read()
            glyph = Image.open(io.BytesIO(data)).convert("RGBA")
            if glyph.size != (CELL, CELL):
                glyph = glyph.resize((CELL, CELL), Image.Resampling.LANCZOS)
            sheet.paste(glyph, ((i % ATLAS_COLUMNS) * CELL, (i // ATLAS_COLUMNS) * CELL))
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "emoji_atlas.png"
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    png.write_bytes(buf.getvalue())
    info = {
        "source": f"npm {PACKAGE}@{VERSION} (img/google/64), Google Noto Color Emoji images, Apache-2.0",
        "tarball_sha256": digest,
        "cell": CELL,
        "columns": ATLAS_COLUMNS,
        "objects": [{"name": o.name, "family": o.family, "source": o.source} for o in OBJECTS],
        "png_sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
    }
    (out_dir / "emoji_atlas.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help=f"{PACKAGE}-{VERSION}.tgz from `npm pack`")
    parser.add_argument("--out", type=Path, default=ROOT / "helpers" / "teaching" / "atlas")
    args = parser.parse_args(argv)
    info = build(args.tarball, args.out)
    print(f"wrote {len(info['objects'])} glyphs to {args.out} (png sha256 {info['png_sha256'][:12]}…)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
