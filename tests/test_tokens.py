"""Production tokens: generation, the keyring, share strings, commands, and the authorization rules."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfproj import authorization, naming, tokens
from mfproj.errors import EXIT_AUTHORIZATION, AuthorizationError, ValidationError
from mfproj.keyring import Keyring, KeyringError, keyring_home
from mfproj.share import SHARE_PREFIX, Share, decode_share, encode_share
from tests.conftest import Cli, write_manifest

PREFIX = naming.token_prefix("myproj", "prod")  # mfprj-wirqh2gc3chugnvb


# --- generation ---------------------------------------------------------------------------------


def test_random_tokens_have_the_documented_shape_and_advance_the_index() -> None:
    first = tokens.random_token(PREFIX, None)
    assert re.fullmatch(rf"{PREFIX}-0-[a-z0-9]{{26}}", first)
    second = tokens.random_token(PREFIX, first)
    assert re.fullmatch(rf"{PREFIX}-1-[a-z0-9]{{26}}", second)
    assert tokens.random_token(PREFIX, tokens.metaflow_token(PREFIX, 41)).startswith(f"{PREFIX}-42-")
    assert len({tokens.random_token(PREFIX, None) for _ in range(200)}) == 200


def test_metaflow_scheme_is_the_reference_sequence() -> None:
    assert tokens.new_token("metaflow", PREFIX, None) == "mfprj-wirqh2gc3chugnvb-0-olpw"
    assert tokens.new_token("metaflow", PREFIX, "mfprj-wirqh2gc3chugnvb-0-olpw") == "mfprj-wirqh2gc3chugnvb-1-cqey"


def test_masking_hides_the_secret_part() -> None:
    assert tokens.mask("mfprj-wirqh2gc3chugnvb-0-olpw") == "mfprj-wirqh2gc3chugnvb-0-****"
    assert tokens.mask("secretvalue") == "secr****"
    assert tokens.mask(None) == "-"


# --- share strings ------------------------------------------------------------------------------


def test_share_strings_round_trip_and_survive_line_wrapping() -> None:
    share = Share("myproj", "prod", PREFIX, tokens.random_token(PREFIX, None))
    text = encode_share(share)
    assert decode_share(text) == share
    wrapped = "\n".join(text[i : i + 30] for i in range(0, len(text), 30))
    assert decode_share("  " + wrapped + "\n") == share


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=1, max_value=200), position=st.integers(min_value=0, max_value=400))
def test_truncated_or_altered_share_strings_are_detected(cut: int, position: int) -> None:
    text = encode_share(Share("myproj", "prod", PREFIX, tokens.metaflow_token(PREFIX, 0)))
    truncated = text[: max(0, len(text) - cut)]
    with pytest.raises(ValidationError, match="damaged or incomplete"):
        decode_share(truncated)
    index = position % len(text)
    replacement = "A" if text[index] != "A" else "B"
    altered = text[:index] + replacement + text[index + 1 :]
    with pytest.raises(ValidationError):
        decode_share(altered)


# --- keyring ------------------------------------------------------------------------------------


def test_keyring_home_follows_metaflow() -> None:
    assert keyring_home({"METAFLOW_TOKEN_HOME": "/a", "METAFLOW_HOME": "/b"}) == Path("/a")
    assert keyring_home({"METAFLOW_TOKEN_HOME": "", "METAFLOW_HOME": "/b"}) == Path("/b")
    assert keyring_home({}) == Path("~/.metaflowconfig").expanduser()
    # Metaflow would write to "/<prefix>" here; mfproj treats the empty variable as unset.
    assert keyring_home({"METAFLOW_HOME": ""}) == Path("~/.metaflowconfig").expanduser()


def test_store_is_private_keeps_other_keys_and_records_where_from(tmp_path: Path) -> None:
    home = tmp_path / "kr"
    keyring = Keyring(home)
    path = home / PREFIX
    home.mkdir(mode=0o755)
    path.write_text(json.dumps({"production_token": "old", "someone_elses": {"x": 1}}))
    keyring.store(PREFIX, f"{PREFIX}-0-abcd", project="myproj", branch="prod", source="test")
    data = json.loads(path.read_text())
    assert data["production_token"] == f"{PREFIX}-0-abcd"
    assert data["someone_elses"] == {"x": 1}
    assert data["mfproj"]["project"] == "myproj" and data["mfproj"]["branch"] == "prod"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]


def test_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "kr"
    home.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text(json.dumps({"production_token": "x"}))
    (home / PREFIX).symlink_to(target)
    keyring = Keyring(home)
    with pytest.raises(KeyringError, match="symbolic link"):
        keyring.load(PREFIX)
    with pytest.raises(KeyringError, match="symbolic link"):
        keyring.store(PREFIX, f"{PREFIX}-0-abcd", project=None, branch=None, source="test")
    assert json.loads(target.read_text()) == {"production_token": "x"}


def test_corrupt_file_is_reported_with_its_path_and_never_overwritten(tmp_path: Path) -> None:
    home = tmp_path / "kr"
    home.mkdir()
    (home / PREFIX).write_text('{"production_token": "trunc')
    keyring = Keyring(home)
    with pytest.raises(KeyringError, match=str(home / PREFIX)):
        keyring.store(PREFIX, f"{PREFIX}-0-abcd", project=None, branch=None, source="test")
    assert (home / PREFIX).read_text() == '{"production_token": "trunc'
    assert keyring.forget(PREFIX)  # an explicit forget may remove it
    assert not (home / PREFIX).exists()


def test_forget_keeps_other_keys(tmp_path: Path) -> None:
    home = tmp_path / "kr"
    keyring = Keyring(home)
    keyring.store(PREFIX, f"{PREFIX}-0-abcd", project="myproj", branch="prod", source="test")
    data = json.loads((home / PREFIX).read_text())
    data["other"] = 1
    (home / PREFIX).write_text(json.dumps(data))
    assert keyring.forget(PREFIX)
    assert json.loads((home / PREFIX).read_text()) == {"other": 1}
    assert not keyring.forget(PREFIX)


# --- compatibility with the reference -----------------------------------------------------------

_REFERENCE = """
import json, sys
from metaflow.plugins.aws.step_functions.production_token import load_token, new_token, store_token
action, prefix = sys.argv[1], sys.argv[2]
if action == "load":
    print(json.dumps(load_token(prefix)))
else:
    store_token(prefix, sys.argv[3])
"""


def _reference(tmp_path: Path, *args: str) -> str:
    pytest.importorskip("metaflow")
    env = {**os.environ, "METAFLOW_TOKEN_HOME": str(tmp_path / "kr"), "USERNAME": "tester"}
    done = subprocess.run(
        [sys.executable, "-c", _REFERENCE, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reference_reads_what_mfproj_stores(tmp_path: Path) -> None:
    token = tokens.random_token(PREFIX, None)
    Keyring(tmp_path / "kr").store(PREFIX, token, project="myproj", branch="prod", source="test")
    assert json.loads(_reference(tmp_path, "load", PREFIX)) == token


def test_mfproj_reads_what_the_reference_stores(tmp_path: Path) -> None:
    _reference(tmp_path, "store", PREFIX, "mfprj-wirqh2gc3chugnvb-0-olpw")
    stored = Keyring(tmp_path / "kr").load(PREFIX)
    assert stored is not None and stored.token == "mfprj-wirqh2gc3chugnvb-0-olpw"
    # And the reference keeps mfproj's own key when it rewrites the file.
    Keyring(tmp_path / "kr").store(PREFIX, "mfprj-wirqh2gc3chugnvb-1-cqey", project="p", branch="b", source="t")
    _reference(tmp_path, "store", PREFIX, "mfprj-wirqh2gc3chugnvb-2-xxxx")
    data = json.loads((tmp_path / "kr" / PREFIX).read_text())
    assert data["production_token"] == "mfprj-wirqh2gc3chugnvb-2-xxxx" and data["mfproj"]["project"] == "p"


# --- concurrency and crashes --------------------------------------------------------------------


PROCESSES = 20  # concurrent writers of one keyring (each a whole `python -m mfproj` start: CPU-bound)


def test_many_processes_authorizing_different_branches_at_once(cli: Cli, tmp_path: Path) -> None:
    write_manifest(tmp_path, "[project]\nname = 'myproj'\n")
    env = {**os.environ, "METAFLOW_USER": "alice"}
    expected = {}
    processes = []
    for i in range(PROCESSES):
        branch = f"b{i}"
        prefix = naming.token_prefix("myproj", f"test.{branch}")
        token = tokens.random_token(prefix, None)
        expected[prefix] = token
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "mfproj", "token", "authorize", "--branch", branch, "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                cwd=tmp_path,
            )
        )
    for process, token in zip(processes, expected.values(), strict=True):
        assert process.stdin is not None
        process.stdin.write(token.encode())
        process.stdin.close()
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    keyring = Keyring(tmp_path / "keyring")
    for prefix, token in expected.items():
        stored = keyring.load(prefix)
        assert stored is not None and stored.token == token
    assert len(keyring.entries()) == PROCESSES


_WRITER = """
import sys
from pathlib import Path
from mfproj.keyring import Keyring
keyring, prefix, name = Keyring(Path(sys.argv[1])), sys.argv[2], sys.argv[3]
for i in range(int(sys.argv[4])):
    keyring.store(prefix, f"{prefix}-{i}-{name}", project="p", branch="b", source=name)
"""


def test_concurrent_writers_on_one_prefix_leave_one_intact_file(tmp_path: Path) -> None:
    home = tmp_path / "kr"
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(home), PREFIX, f"w{n}", "40"]) for n in range(8)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    stored = Keyring(home).load(PREFIX)
    assert stored is not None and re.fullmatch(rf"{PREFIX}-39-w\d", stored.token or "")
    assert stored.source == stored.token.rsplit("-", 1)[1]  # token and metadata from the same write


def test_sigkill_mid_write_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    home = tmp_path / "kr"
    keyring = Keyring(home)
    keyring.store(PREFIX, f"{PREFIX}-0-initial", project="p", branch="b", source="seed")
    # A large extra key makes every write long, so kills land in the middle of writes.
    data = json.loads((home / PREFIX).read_text())
    data["padding"] = "x" * 900_000  # below the 1 MiB a token file may have
    (home / PREFIX).write_text(json.dumps(data))
    valid = {f"{PREFIX}-0-initial"} | {f"{PREFIX}-{i}-killed" for i in range(100_000)}
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    for attempt in range(12):
        if time.monotonic() > deadline:
            break
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(home), PREFIX, "killed", "100000"])
        time.sleep(0.25 + 0.05 * attempt)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        content = json.loads((home / PREFIX).read_text())  # never a broken file
        assert content["production_token"] in valid
        assert len(content["padding"]) == 900_000
        seen.add(content["production_token"])
    assert len(seen) > 1, "the writers should have replaced the file at least once before being killed"
    # A killed writer may leave its temporary file behind; it is hidden, ignored, and removed by the next write.
    assert [e.token_prefix for e in keyring.entries()] == [PREFIX]
    keyring.store(PREFIX, f"{PREFIX}-0-after", project="p", branch="b", source="t")
    assert not list(home.glob("*.tmp"))


# --- commands -----------------------------------------------------------------------------------


@pytest.fixture
def myproj(tmp_path: Path) -> Path:
    return write_manifest(tmp_path, "[project]\nname = 'myproj'\n[[flows]]\nname = 'HelloFlow'\n")


def test_authorize_show_share_list_forget(cli: Cli, myproj: Path, tmp_path: Path, secrets: set[str]) -> None:
    env = {"METAFLOW_USER": "alice"}
    token = tokens.random_token(PREFIX, None)
    secrets.add(token)
    stored = cli("token", "authorize", "--production", "-", stdin=f"production:{token}\n", env=env)
    assert stored.code == 0, stored.stderr
    assert json.loads((tmp_path / "keyring" / PREFIX).read_text())["production_token"] == token

    shown = cli("token", "show", "--production", "-o", "json", env=env).json()
    assert shown["token"] == f"{PREFIX}-0-****" and shown["revealed"] is False
    assert cli("token", "show", "--production", "--reveal", env=env, reveal=True).stdout.strip() == token

    listed = cli("token", "list", "-o", "json", env=env).json()
    assert [(e["token_prefix"], e["project"], e["branch"]) for e in listed] == [(PREFIX, "myproj", "prod")]

    share = cli("token", "share", "--production", env=env, reveal=True).stdout.strip()
    assert share.startswith(SHARE_PREFIX) and "\n" not in share

    assert cli("token", "forget", "--production", env=env).code == 0
    assert not (tmp_path / "keyring" / PREFIX).exists()
    assert cli("token", "show", "--production", env=env).code == 4

    # The share string brings it back, from stdin, a file or a variable.
    assert cli("token", "authorize", "--production", "-", stdin=share, env=env).code == 0
    (tmp_path / "share.txt").write_text(share)
    assert cli("token", "authorize", "--production", "--from-file", "share.txt", env=env).code == 0
    assert cli("token", "authorize", "--production", "--from-env", "S", env={**env, "S": share}).code == 0
    assert Keyring(tmp_path / "keyring").load_token(PREFIX) == token


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--branch", "other", "-"], "SHARE", "this share string is for myproj prod, not myproj test.other"),
        (["-"], "SHARE", "for example 'mfproj token authorize --production -'"),
        (["--production", "-"], "mfprj-aaaaaaaaaaaaaaaa-0-abcd", "not to myproj prod"),
        (["--production", "-"], "TRUNCATED", "damaged or incomplete"),
        (["--production", "-"], "", "no token given"),
        (["--production", "-"], "not a token!", "is not a production token"),
        (["--production", "--from-env", "NOPE"], None, "NOPE is unset or empty"),
        (["--production", "x", "--from-env", "V"], None, "exactly one way"),
    ],
)
def test_authorize_refusals(cli: Cli, myproj: Path, args: list[str], stdin: str | None, message: str) -> None:
    share = encode_share(Share("myproj", "prod", PREFIX, tokens.metaflow_token(PREFIX, 0)))
    text = {"SHARE": share, "TRUNCATED": share[:-12]}.get(stdin or "", stdin)
    result = cli("token", "authorize", *args, stdin=text, env={"METAFLOW_USER": "alice"})
    assert result.code == 2
    assert message in result.stderr
    assert not (Path("keyring") / PREFIX).exists(), "a refused token must not be stored"


def test_forget_all_needs_confirmation_when_not_interactive(cli: Cli, myproj: Path) -> None:
    env = {"METAFLOW_USER": "alice"}
    cli("token", "authorize", "--production", "-", stdin=tokens.random_token(PREFIX, None), env=env)
    refused = cli("token", "forget", "--all", env=env)
    assert refused.code == 2 and "--yes" in refused.stderr
    assert cli("token", "forget", "--all", "--yes", "-o", "json", env=env).json() == {"forgotten": [PREFIX]}


def test_corrupt_token_file_is_reported_by_the_cli(cli: Cli, myproj: Path, tmp_path: Path) -> None:
    (tmp_path / "keyring").mkdir()
    (tmp_path / "keyring" / PREFIX).write_text("{not json")
    result = cli("token", "show", "--production", env={"METAFLOW_USER": "alice"})
    assert result.code == 2
    assert f"{tmp_path / 'keyring' / PREFIX} is corrupt" in result.stderr
    assert (tmp_path / "keyring" / PREFIX).read_text() == "{not json"


# --- authorization rules ------------------------------------------------------------------------


def _decide(**kwargs: object) -> authorization.Decision:
    defaults: dict[str, object] = {
        "existing": authorization.OwnerRecord(owner="alice", token=f"{PREFIX}-0-abcd"),
        "caller": "alice",
        "offered": None,
        "generate_new": False,
        "new": lambda previous: tokens.metaflow_successor(PREFIX, previous),
        "deployment_name": "myproj.prod.HelloFlow",
        "branch_options": "--production",
    }
    defaults.update(kwargs)
    if isinstance(defaults["caller"], str):
        defaults["caller"] = authorization.Caller(str(defaults["caller"]))
    return authorization.authorize(**defaults)  # type: ignore[arg-type]


def test_first_deployment_gets_a_new_token() -> None:
    decision = _decide(existing=None, caller="bob")
    assert (decision.token, decision.is_new) == (tokens.metaflow_token(PREFIX, 0), True)
    unprotected = _decide(existing=authorization.OwnerRecord(owner="carol", token=None), caller="bob")
    assert unprotected.is_new


def test_owner_redeploys_without_a_token() -> None:
    existing = authorization.OwnerRecord(owner="alice", token=tokens.metaflow_token(PREFIX, 0))
    decision = _decide(existing=existing)
    assert (decision.token, decision.is_new, decision.reason) == (existing.token, False, "owner")


def test_anyone_with_the_token_may_redeploy_and_becomes_authorized() -> None:
    existing = authorization.OwnerRecord(owner="alice", token=tokens.metaflow_token(PREFIX, 0))
    offered = authorization.OfferedToken(existing.token or "", "keyring")
    decision = _decide(existing=existing, caller="bob", offered=offered)
    assert decision.token == existing.token and "keyring" in decision.reason


def test_generate_new_token_moves_to_the_next_namespace() -> None:
    existing = authorization.OwnerRecord(owner="alice", token=tokens.metaflow_token(PREFIX, 0))
    assert _decide(existing=existing, generate_new=True).token == tokens.metaflow_token(PREFIX, 1)


@pytest.mark.parametrize(
    ("offered", "problem"),
    [
        (None, "you offered no production token"),
        (
            authorization.OfferedToken(f"{PREFIX}-0-zzzz", "--authorize"),
            "the production token from --authorize does not match",
        ),
        (authorization.OfferedToken(f"{PREFIX}-0-zzzz", "keyring"), "the production token from keyring does not match"),
    ],
)
@pytest.mark.parametrize("generate_new", [False, True])
def test_refusals_say_who_deployed_and_how_to_get_authorized(
    offered: authorization.OfferedToken | None, problem: str, generate_new: bool
) -> None:
    with pytest.raises(AuthorizationError) as caught:
        _decide(caller="bob", offered=offered, generate_new=generate_new)
    error = caught.value
    assert error.exit_code == EXIT_AUTHORIZATION == 3
    assert str(error).startswith("myproj.prod.HelloFlow was deployed by alice, and ")
    assert problem in str(error)
    assert "mfproj token share --production" in (error.hint or "")
    assert "mfproj token authorize --production -" in (error.hint or "")
    assert "MFPROJ_PRODUCTION_TOKEN" in (error.hint or "")
    assert f"{PREFIX}-0-abcd" not in str(error) + (error.hint or "")  # never the deployed token


def test_offered_token_comes_from_the_first_source_that_has_one(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "kr")
    keyring.store(PREFIX, f"{PREFIX}-0-keyr", project=None, branch=None, source="t")
    (tmp_path / "t.txt").write_text(f"production:{PREFIX}-0-file\n")
    env = {"MFPROJ_PRODUCTION_TOKEN": f"{PREFIX}-0-envv"}
    full = {"target": authorization.BranchRef("myproj", "prod", PREFIX), "keyring": keyring}
    assert authorization.offered_token(
        authorize=f"production:{PREFIX}-0-cli", authorize_file=tmp_path / "t.txt", env=env, **full
    ) == (authorization.OfferedToken(f"{PREFIX}-0-cli", "--authorize"))
    assert authorization.offered_token(
        authorize_file=tmp_path / "t.txt", env=env, **full
    ) == authorization.OfferedToken(f"{PREFIX}-0-file", "--authorize-file")
    assert authorization.offered_token(env=env, **full) == authorization.OfferedToken(
        f"{PREFIX}-0-envv", "MFPROJ_PRODUCTION_TOKEN"
    )
    assert authorization.offered_token(env={}, **full) == authorization.OfferedToken(f"{PREFIX}-0-keyr", "keyring")
    other = authorization.BranchRef("myproj", "test.x", naming.token_prefix("myproj", "test.x"))
    assert authorization.offered_token(env={}, target=other, keyring=keyring) is None


@pytest.mark.parametrize("value", ["abc\n", "mfprj-aaaaaaaaaaaaaaaa-0-abcd\n", "\n"])
def test_a_trailing_newline_is_not_part_of_a_valid_token(value: str) -> None:
    # `$` in a pattern also matches before a final newline; the rules use an exact end (found by hypothesis).
    with pytest.raises(ValidationError):
        tokens.validate_token(value)


def test_metaflows_own_token_files_are_listed_with_what_they_belong_to(cli: Cli, myproj: Path, tmp_path: Path) -> None:
    """Metaflow's token file holds the token alone; its name is a hash of project and branch, so the
    branches one can name from here (prod, your user branch, each git branch's) say whose it is."""
    home = tmp_path / "keyring"
    home.mkdir(exist_ok=True)
    prod, mine = naming.token_prefix("myproj", "prod"), naming.token_prefix("myproj", "user.alice")
    unknown = naming.token_prefix("another", "prod")
    for prefix in (prod, mine, unknown):
        (home / prefix).write_text(json.dumps({"production_token": f"{prefix}-0-abcd"}))  # as Metaflow writes it
    listed = cli("token", "list", "-o", "json", env={"METAFLOW_USER": "alice"}).json()
    found = {e["token_prefix"]: (e["project"], e["branch"], e["source"]) for e in listed}
    assert found == {
        prod: ("myproj", "prod", "metaflow"),
        mine: ("myproj", "user.alice", "metaflow"),
        unknown: (None, None, None),  # another project's: nothing here can name it
    }
