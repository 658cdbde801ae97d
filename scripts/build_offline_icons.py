"""Rebuild dashboard/ui/assets/tabler/: the few Tabler icons Panel's chat widgets use.

Bokeh's TablerIcon fetches the whole Tabler webfont (500 KB) from cdn.jsdelivr.net, so with no
internet the chat's buttons lose their icons and the page calls a third party. The dashboard
serves this subset instead (dashboard/ui/assets/offline-icons.js points Bokeh at it).

Usage (needs npm and the dev environment's fontTools):
    .venv/bin/python scripts/build_offline_icons.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from fontTools import subset

VERSION = "3.49.0"
#: What Panel's ChatInterface, ChatMessage and ChatReactionIcons ask for (panel/chat/*.py).
ICONS = (
    "send", "player-stop", "repeat", "arrow-back", "trash", "edit", "x", "copy", "check",
    "heart", "thumb-up", "thumb-down",
)  # fmt: skip
OUT = Path(__file__).resolve().parents[1] / "dashboard" / "ui" / "assets" / "tabler"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"@tabler/icons-webfont@{VERSION}", "--silent"],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        with tarfile.open(next(Path(tmp).glob("*.tgz"))) as archive:
            archive.extractall(tmp, filter="data")
        dist = Path(tmp) / "package" / "dist"
        css = (dist / "tabler-icons.min.css").read_text(encoding="utf-8")
        rules, codepoints = [], []
        for name in ICONS:
            found = re.search(rf'\.ti-{re.escape(name)}:before\{{content:"\\([0-9a-f]+)"\}}', css)
            if found is None:
                print(f"no icon {name!r} in Tabler {VERSION}", file=sys.stderr)
                return 1
            rules.append(found.group(0))
            codepoints.append(int(found.group(1), 16))
        base = re.search(r"\.ti\{[^}]*\}", css)
        assert base is not None
        (OUT / "fonts").mkdir(parents=True, exist_ok=True)
        font_face = (
            '@font-face{font-family:"tabler-icons";font-style:normal;font-weight:400;'
            'src:url("./fonts/tabler-icons.woff2") format("woff2")}'
        )
        subset_names = ", ".join(ICONS)
        header = f"/* Tabler Icons {VERSION} (MIT, https://tabler.io), subset: {subset_names} */"
        (OUT / "tabler-icons.min.css").write_text(
            "\n".join([header, font_face, base.group(0), *rules]) + "\n", encoding="utf-8"
        )
        options = subset.Options()
        options.flavor = "woff2"
        options.layout_features = []
        font = subset.load_font(str(dist / "fonts" / "tabler-icons.ttf"), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=codepoints)
        subsetter.subset(font)
        subset.save_font(font, str(OUT / "fonts" / "tabler-icons.woff2"), options)
        (OUT / "LICENSE").write_bytes((Path(tmp) / "package" / "LICENSE").read_bytes())
    print(f"wrote {len(ICONS)} icons to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
