"""Start-up skips alembic when the schema is already at the migration files' head."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from backend.runs.store import create_engine, run_migrations
from backend.runs.store.database import head_revisions, schema_is_current

REPO = Path(__file__).resolve().parents[2]


def test_the_head_is_the_revision_nothing_builds_on() -> None:
    versions = sorted(p.name for p in (REPO / "backend/runs/store/migrations/versions").glob("*.py"))
    heads = head_revisions()
    assert heads is not None and len(heads) == 1
    (head,) = heads
    assert any(name.startswith(head) for name in versions)


async def test_a_fresh_database_is_migrated_then_found_current(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/store.db")
    try:
        async with engine.connect() as connection:
            assert not await schema_is_current(connection)
        await run_migrations(engine)
        async with engine.connect() as connection:
            assert await schema_is_current(connection)
    finally:
        await engine.dispose()


def test_a_restart_on_a_current_schema_imports_no_alembic(tmp_path: Path) -> None:
    script = f"""
import asyncio, sys
from backend.runs.store import create_engine, run_migrations

async def main(url):
    engine = create_engine(url)
    try:
        await run_migrations(engine)
    finally:
        await engine.dispose()

url = "sqlite+aiosqlite:///{tmp_path}/store.db"
asyncio.run(main(url))
sys.modules.pop("alembic", None)
for name in [m for m in sys.modules if m.startswith("alembic")]:
    del sys.modules[name]
asyncio.run(main(url))
print("alembic" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
