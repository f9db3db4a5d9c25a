"""`cvault keys status`: every key with id, state, age and what it protects; a warning for old keys."""

from __future__ import annotations

import base64
import json

from tests.support.cvault_command import cvault_env, run_cvault
from tests.support.enrolled_org import EnrolledOrg
from vault.crypto.keyring import MasterKey, generate_key
from vault.storage.pool import Pool


async def test_status_lists_every_key_and_warns_about_old_ones(
    world: EnrolledOrg, pool: Pool, database_url: str
) -> None:
    master = world.h.store_config.master_key
    assert master is not None
    await world.h.store("PUT", world.secret("a"), world.bundle, {"value": "v"})
    # Make the authority's root key look two years old.
    await pool.execute(
        "UPDATE authority.wrapped_keys SET created_at = now() - interval '730 days' WHERE purpose = 'authority-root'"
    )
    env = cvault_env({"CVAULT_DATABASE_URL": database_url, "CVAULT_MASTER_KEY": base64.b64encode(master).decode()})
    code, out, err = await run_cvault("keys", "status", "--json", env=env)
    assert code == 0, err
    status = json.loads(out)
    by_id = {line["id"]: line for line in status["keys"]}
    assert by_id["store/kek/1"]["state"] == "active"
    assert "under the current master key" in by_id["store/kek/1"]["protects"]
    assert [line["state"] for line in status["keys"] if line["kind"] == "master"] == ["current"]
    root = next(line for line in status["keys"] if line["id"].startswith("authority/authority-root/"))
    assert root["state"] == "current" and root["age_seconds"] >= 730 * 86400
    org_root = next(line for line in status["keys"] if line["id"].startswith("store/store-root/"))
    assert f"org {world.org}" in org_root["protects"]
    data = by_id["store/store-dek"]
    assert data["kind"] == "data-keys" and data["count"] >= 1
    assert any(w.startswith(root["id"]) for w in status["warnings"]) and len(status["warnings"]) == 1
    assert "warning: " + root["id"] in err

    # The table form, without a master key (then KEKs do not say which key wraps them).
    env.pop("CVAULT_MASTER_KEY")
    env["CVAULT_KEY_MAX_AGE"] = str(800 * 86400)
    code, out, err = await run_cvault("keys", "status", env=env)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["KEY", "STATE", "AGE", "PROTECTS"]
    assert "730d" in out and "master:" not in out and "warning" not in err
    assert base64.b64encode(master).decode() not in out + err
    other = MasterKey(generate_key())
    env["CVAULT_MASTER_KEY"] = base64.b64encode(other.key).decode()
    code, out, err = await run_cvault("keys", "status", env=env)
    assert "under an unknown master key" in out
