"""The run report as a business user sees it: a real run's report.html rendered in headless Chromium, with a
screenshot kept under the test's tmp dir. The page shows the run's headline counts, draws its charts, links
only to Data Docs files that exist, and fetches nothing from the network.

Chromium is found as `chromium` on PATH (`make test` installs it). Skipped with the reason where it is
missing, except under CI, where a missing browser fails the run."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from demodata import generate
from emulators.salesforce import SalesforceEmulator
from erp2crm import local
from erp2crm.demo import DEMO_AS_OF, connections
from erp2crm.pipeline import hub_store
from erp2crm.report import GATES

WIDTH, HEIGHT = 1280, 2400
BAR = {"pos": (0x3B, 0x7D, 0xD8), "neg": (0xD8, 0x56, 0x3B)}  # .fill.pos / .fill.neg in the report's CSS

# Appended to a copy of the page (in the report's own folder, so relative links resolve the same): after layout,
# writes what the test checks into the DOM, which --dump-dom prints.
MEASURE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
const out = {
  cards: Object.fromEntries([...document.querySelectorAll('.card')].map(c =>
      [c.querySelector('span').textContent, c.querySelector('b').textContent])),
  charts: [...document.querySelectorAll('.chart')].map(c => ({box: box(c),
      bars: [...c.querySelectorAll('.bar')].map(b => ({label: b.querySelector('.label').textContent,
          fill: b.querySelector('.fill').className, box: box(b.querySelector('.fill'))}))})),
  tables: [...document.querySelectorAll('table')].map(t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))),
  boxes: [...document.querySelectorAll('.scroll')].map(d => [d.scrollWidth, d.clientWidth]),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  page_width: document.documentElement.scrollWidth,
  resources: performance.getEntriesByType('resource').map(e => e.name),
};
const pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.append(pre);
</script>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        reason = "headless Chromium not found: no `chromium` on PATH (`make test` installs it with apt-get)"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {reason}")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="module")
def run(chromium, airflow_db, tmp_path_factory):
    """One full sync through real Airflow on small generated ERP databases (with their planted bad rows)."""
    var = tmp_path_factory.mktemp("report-browser")
    erp = var / "erp"
    generate(erp, n_customers=80, seed=5)
    token = "report-browser-token-91c2"
    with SalesforceEmulator(state_file=var / "crm.json", token=token) as crm:
        local.configure(var, connections(var, erp, crm.url, token))
        dag_run = local.run_dag("erp_crm_customer_sync", {"as_of": DEMO_AS_OF, "full_refresh": True})
    assert str(dag_run.state) == "success"
    return hub_store().run(dag_run.run_id)["summary"]


def _chromium(binary: str, tmp: Path, *args: str) -> str:
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    profile.mkdir()
    done = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: no network
         f"--window-size={WIDTH},{HEIGHT}", *args],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _read_png(path: Path) -> np.ndarray:
    """An 8-bit, non-interlaced RGB(A) PNG as a height × width × 3 array (Chromium writes these)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + n])
        elif kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    assert depth == 8 and color in (2, 6) and not interlace, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, width * bpp + 1)
    image = np.zeros((height, width * bpp), np.uint8)
    prev = np.zeros(width * bpp, np.uint8)
    for y in range(height):  # undo each row's filter (PNG spec, section 9)
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:
            cur = (line.reshape(width, bpp).cumsum(axis=0, dtype=np.uint64) % 256).astype(np.uint8).ravel()
        elif kind == 2:
            cur = line + prev
        else:
            cur, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(len(cur)):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    cur[i] = (cur[i] + ((a + b) >> 1)) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(cur), np.uint8)
        image[y] = prev = cur
    return image.reshape(height, width, bpp)[..., :3]


def test_the_run_report_renders_in_a_browser_with_its_counts_charts_and_data_docs(chromium, run, tmp_path):
    report = Path(run["report"])
    page = report.read_text(encoding="utf-8")
    # Nothing the page could fetch: no remote src/href/url()/@import, no script of its own.
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//|url\(|@import""", page, re.I)
    assert "<script" not in page.lower()

    # The screenshot, of the page as written.
    shot = tmp_path / "report.png"
    _chromium(chromium, tmp_path, f"--screenshot={shot}", report.as_uri())
    image = _read_png(shot)
    assert image.shape == (HEIGHT, WIDTH, 3)
    ink = (image < 245).any(axis=2)  # anything but the white page
    assert 0.03 < ink.mean() < 0.6, f"{ink.mean():.1%} of the screenshot is drawn on"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # text, cards, bars: not one flat colour

    # The same page with a measuring script appended, after Chromium has laid it out.
    measured = report.with_name("report.measured.html")
    measured.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium(chromium, tmp_path, "--dump-dom", measured.as_uri())
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    m = json.loads(html.unescape(found.group(1)))

    # Headline counts as the run summary holds them.
    held = sum(run["rows_quarantined"].values()) + run["customers_held"] + run["profiles_held"]
    assert held > 0  # the generated ERPs have planted bad rows: the held-back section has something to say
    assert m["cards"] == {
        "unified customers": f"{run['unified_customers']:,}", "profiles": f"{run['profiles']:,}",
        "CRM writes": f"{run['crm_writes']:,}", "rows held back": f"{held:,}",
        "CRM rejections": f"{run['crm_rejected']:,}",
        f"net value ({run['reporting_currency']})": f"{run['total_net_value']:,.2f}"}
    gate = next(t for t in m["tables"] if t[0][:2] == ["entity", "rows in"])
    assert gate[1:] == [[e.replace("_", " "), f"{n:,}", f"{run['rows_passed'][e]:,}", f"{run['rows_quarantined'][e]:,}",
                         f"{run['rows_released'][e]:,}"] for e, n in run["rows_in"].items()]
    reasons = next(t for t in m["tables"] if t[0][:3] == ["stage", "entity", "reason"])
    assert all(row[3] for row in reasons[1:]), "a held-back reason without its example"

    # Both charts drawn: one bar per segment, each with a visible fill, painted in the screenshot where the DOM
    # says it is (the charts are plain HTML and CSS; a broken style would leave them empty).
    assert len(m["charts"]) == 2
    segments = {s.replace("_", " ") for s in run["segments"]}
    for chart in m["charts"]:
        assert chart["box"]["w"] > 0 and chart["box"]["h"] > 0
        assert {b["label"] for b in chart["bars"]} == segments
        for bar in chart["bars"]:
            box = bar["box"]
            assert box["w"] >= 1 and box["h"] >= 8, bar
            y, x = int(box["y"] + box["h"] / 2), int(box["x"] + box["w"] / 2)
            assert y < HEIGHT, f"the charts fall below the {HEIGHT} px screenshot"
            colour = BAR["neg" if "neg" in bar["fill"] else "pos"]
            assert np.abs(image[y, x].astype(int) - colour).max() <= 12, (bar, image[y, x])

    # Nothing is wider than the window; wide tables scroll in their own box.
    assert m["page_width"] <= WIDTH
    assert all(scroll <= client + 1 for scroll, client in m["boxes"])

    # Every link is a Data Docs file next to the report, and every gate's checks are linked.
    links = [urlparse(href) for href in m["links"]]
    assert links and all(link.scheme == "file" for link in links), m["links"]
    paths = [Path(unquote(link.path)) for link in links]
    assert all(p.is_file() and report.parent / "data_docs" in p.parents for p in paths), paths
    for gate_name in GATES:
        site = report.parent / "data_docs" / gate_name
        assert any("validations" in p.parts and p.is_relative_to(site) for p in paths), f"no {gate_name} checks linked"

    # The browser loaded nothing besides the page itself.
    assert m["resources"] == []
