"""The command line as a user runs it: real processes, exit codes, stdout vs stderr."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


def careerbot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config.example.toml", tmp_path / "config.toml")
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    return tmp_path


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("careerbot: error")]
    assert len(lines) == 1, result.stderr
    assert text in lines[0]


def test_once_on_the_example_config_then_alerts_on_change(workdir: Path) -> None:
    first = careerbot("once", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "", "baseline poll is silent"
    assert "baseline" in first.stderr
    assert (workdir / "careerbot.sqlite3").exists()

    shutil.copy(
        workdir / "samples/greenhouse/figma-board-v2.json",
        workdir / "samples/greenhouse/figma-board.json",
    )
    second = careerbot("once", cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("[NEW]") == 1
    assert second.stdout.count("[UPDATED]") == 1
    third = careerbot("once", cwd=workdir)
    assert third.returncode == 0
    assert "[NEW]" not in third.stdout
    assert "[UPDATED]" not in third.stdout

    sources = careerbot("sources", cwd=workdir)
    assert sources.returncode == 0
    rows = {line.split("\t")[0]: line.split("\t") for line in sources.stdout.splitlines()[1:]}
    assert rows["cvpr-2024"][1:3] == ["cvpr", "6h"]
    assert rows["cvpr-2024"][5:7] == ["26", "0"]


def test_backup_writes_a_copy_careerbot_can_use(workdir: Path) -> None:
    assert careerbot("once", cwd=workdir).returncode == 0
    result = careerbot("backup", "backups-copy.sqlite3", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "backed up" in result.stdout
    copy = workdir / "restored"
    copy.mkdir()
    shutil.copy(workdir / "backups-copy.sqlite3", copy / "careerbot.sqlite3")
    shutil.copy(workdir / "config.toml", copy / "config.toml")
    shutil.copytree(workdir / "samples", copy / "samples")
    sources = careerbot("sources", cwd=copy)
    rows = {line.split("\t")[0]: line.split("\t") for line in sources.stdout.splitlines()[1:]}
    assert rows["cvpr-2024"][5] == "26", "the restored database has the postings"
    again = careerbot("once", cwd=copy)
    assert again.returncode == 0 and again.stdout == "", "restored state: no repeated alerts"


def test_once_exits_1_when_a_source_fails_and_still_polls_the_others(workdir: Path) -> None:
    (workdir / "samples/greenhouse/figma-board.json").write_text("{not json")
    result = careerbot("once", cwd=workdir)
    assert result.returncode == 1
    assert "careerbot: source figma failed: greenhouse: invalid JSON" in result.stderr
    assert "source cvpr-2024: 26 postings" in result.stderr
    assert "Traceback" not in result.stderr


def test_parse_prints_json_lines_following_file_pagination(workdir: Path) -> None:
    result = careerbot("parse", "--type", "cvpr", "file:samples/cvpr/page1.html", cwd=workdir)
    assert result.returncode == 0, result.stderr
    postings = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(postings) == 26
    assert {p["source"] for p in postings} == {"cli"}
    assert set(postings[0]) == {
        "source", "id", "title", "company", "locations", "remote", "team", "employment_type",
        "posted_at", "salary_min", "salary_max", "salary_currency", "salary_period", "url",
        "apply_url", "description",
    }  # fmt: skip


def test_parse_with_config_uses_the_configured_source(workdir: Path) -> None:
    result = careerbot("parse", "--source", "figma", cwd=workdir)
    assert result.returncode == 0, result.stderr
    postings = [json.loads(line) for line in result.stdout.splitlines()]
    assert {p["source"] for p in postings} == {"figma"}
    assert len(postings) == 3


def test_subscribe_search_and_unsubscribe(workdir: Path) -> None:
    careerbot("once", cwd=workdir)
    added = careerbot(
        "subscribe", 'nerf OR "gaussian splatting"', "--target", "console", cwd=workdir
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("subscription #2:")
    listed = careerbot("subscriptions", cwd=workdir)
    assert '#2\tconsole\tchanged,new\tcli\tnerf OR "gaussian splatting"' in listed.stdout
    found = careerbot("search", "--json", "--limit", "2", "company:figma", cwd=workdir)
    assert found.returncode == 0
    assert [json.loads(line)["company"] for line in found.stdout.splitlines()] == ["Figma"] * 2
    assert careerbot("unsubscribe", "2", cwd=workdir).returncode == 0
    assert_one_line_error(careerbot("unsubscribe", "2", cwd=workdir), 2, "no subscription #2")


def test_python_m_bot_and_console_script_agree(workdir: Path) -> None:
    script = Path(sys.executable).parent / "careerbot"
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    via_script = subprocess.run(
        [str(script), "check-config"], cwd=workdir, capture_output=True, text=True, timeout=60
    )
    via_module = careerbot("check-config", cwd=workdir)
    assert via_script.returncode == via_module.returncode == 0
    assert via_script.stdout == via_module.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("once", "--source", "nope"), 2, "no source named 'nope'"),
        (("once", "--config", "absent.toml"), 2, "config file 'absent.toml' not found"),
        (("parse", "--type", "nope", "file:x"), 2, "unknown source type 'nope'"),
        (("parse", "--type", "cvpr", "file:absent.html"), 2, "file not found"),
        (("parse", "--type", "cvpr", "gopher://x"), 2, "is not an http(s):// URL or a file: path"),
        (("parse", "--type", "cvpr"), 2, "parse needs --type TYPE LOCATION"),
        (("search", '"open'), 2, "invalid query: unclosed quote"),
        (("backup", "copy.sqlite3"), 2, "no database at"),
        (("search", "foo:bar"), 2, "unknown field 'foo'"),
        (("subscribe", "x", "--target", "email:me"), 2, "'email:me' is not a target"),
        (("subscribe", "x", "--target", "webhook:none"), 2, "no [webhooks.none]"),
        (("subscribe", "x", "--target", "console", "--notify", "born"), 2, "'born' is not a valid"),
        (("subscribe", "-", "--target", "console"), 2, "invalid query"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    workdir: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    assert_one_line_error(careerbot(*args, cwd=workdir), code, message)


def test_check_config_names_the_bad_key(workdir: Path) -> None:
    config = workdir / "config.toml"
    config.write_text(
        config.read_text().replace('timezone = "UTC"', 'timezone = "UTC"\ncolour = 1')
    )
    assert_one_line_error(careerbot("check-config", cwd=workdir), 2, "bot.colour: unknown key")


def test_check_config_reports_missing_environment_without_leaking_secrets(workdir: Path) -> None:
    config = workdir / "config.toml"
    config.write_text(
        config.read_text()
        + '\n[webhooks.lab]\nkind = "slack"\nurl_env = "LAB_HOOK"\n'
        + '[[subscriptions]]\ntarget = "webhook:lab"\nquery = "x"\n'
    )
    assert_one_line_error(
        careerbot("check-config", cwd=workdir), 2, "environment variable LAB_HOOK is not set"
    )
    secret = "https://hooks.slack.invalid/services/T1/B1/super-secret"
    ok = careerbot("check-config", cwd=workdir, env={"LAB_HOOK": secret})
    assert ok.returncode == 0, ok.stderr
    assert "super-secret" not in ok.stdout + ok.stderr


def test_config_from_environment_variable(workdir: Path) -> None:
    (workdir / "elsewhere").mkdir()
    result = careerbot(
        "check-config", cwd=workdir / "elsewhere", env={"CAREERBOT_CONFIG": "../config.toml"}
    )
    assert result.returncode == 0, result.stderr


def test_options_work_before_the_command(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    result = careerbot("--config", "../config.toml", "check-config", cwd=workdir / "sub")
    assert result.returncode == 0, result.stderr


def test_dry_run_changes_nothing_on_disk(workdir: Path) -> None:
    careerbot("once", cwd=workdir)
    careerbot("subscribe", "figma", "--target", "console", "--notify", "new,changed", cwd=workdir)
    before = careerbot("subscriptions", cwd=workdir).stdout
    shutil.copy(
        workdir / "samples/greenhouse/figma-board-v2.json",
        workdir / "samples/greenhouse/figma-board.json",
    )
    config = workdir / "config.toml"
    without_subscriptions = config.read_text().split("[[subscriptions]]")[0]
    (workdir / "other.toml").write_text(without_subscriptions)
    dry = careerbot("once", "--dry-run", "--config", "other.toml", cwd=workdir)
    assert dry.returncode == 0, dry.stderr
    assert "[NEW]" in dry.stdout, "the CLI subscription still matches in a dry run"
    assert careerbot("subscriptions", cwd=workdir).stdout == before
    real = careerbot("once", cwd=workdir)
    assert real.stdout.count("[NEW]") == 2, "the changes are still new after the dry run"


def test_dry_run_without_a_database_creates_none(workdir: Path) -> None:
    result = careerbot("once", "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert not (workdir / "careerbot.sqlite3").exists()


def test_a_second_poller_on_the_same_database_is_refused(workdir: Path) -> None:
    from bot.lock import exclusive

    with exclusive(workdir / "careerbot.sqlite3"):
        result = careerbot("once", cwd=workdir)
    assert_one_line_error(result, 2, "is in use by another careerbot")
    assert careerbot("once", cwd=workdir).returncode == 0, "the lock is released"


def test_config_declared_subscription_cannot_be_removed_here(workdir: Path) -> None:
    careerbot("once", cwd=workdir)
    assert_one_line_error(
        careerbot("unsubscribe", "1", cwd=workdir), 2, "declared in the config file"
    )


def test_subscription_ids_are_never_reused(workdir: Path) -> None:
    first = careerbot("subscribe", "alice", "--target", "console", cwd=workdir).stdout
    careerbot("unsubscribe", first.split("#")[1].split(":")[0], cwd=workdir)
    second = careerbot("subscribe", "bob", "--target", "console", cwd=workdir).stdout
    assert first.split(":")[0] != second.split(":")[0]


@pytest.mark.parametrize(
    "args",
    [
        ("parse", "--type", "cvpr", "http://[::1"),
        ("parse", "--type", "cvpr", "http://[::1]:99999/"),
        ("parse", "--type", "cvpr", "http://xn--/"),
        ("unsubscribe", "99999999999999999999999"),
    ],
)
def test_malformed_arguments_never_show_a_traceback(workdir: Path, args: tuple[str, ...]) -> None:
    result = careerbot(*args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('interval = "99999999999999999d"', "at most 365d"),
        ('url = "http://[::1]:99999/"', "is not a valid URL"),
        ('url = "https:///nohost"', "has no host name"),
    ],
)
def test_config_values_that_would_crash_later_are_refused(
    workdir: Path, setting: str, message: str
) -> None:
    config = workdir / "config.toml"
    key = setting.split(" = ")[0]
    lines = config.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{key} = "))
    lines[index] = setting
    config.write_text("\n".join(lines))
    assert_one_line_error(careerbot("check-config", cwd=workdir), 2, message)


async def test_debug_logs_never_show_a_webhook_url(workdir: Path) -> None:
    import asyncio

    from loopback import Reply, serve

    config = workdir / "config.toml"
    config.write_text(
        config.read_text()
        + '\n[webhooks.lab]\nkind = "discord"\nurl_env = "LAB_HOOK"\n'
        + '[[subscriptions]]\ntarget = "webhook:lab"\nquery = "figma"\n'
    )
    async with serve() as server:
        server.set("/api/webhooks/1/SUPERSECRET", Reply(200, '{"id": "1"}'))
        env = {"PATH": "/usr/bin:/bin", "LAB_HOOK": server.url("/api/webhooks/1/SUPERSECRET")}

        async def run_once() -> bytes:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "once", "--log-level", "DEBUG",
                cwd=workdir, env=env, stderr=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            _, stderr = await process.communicate()
            return stderr

        await run_once()
        shutil.copy(
            workdir / "samples/greenhouse/figma-board-v2.json",
            workdir / "samples/greenhouse/figma-board.json",
        )
        stderr = await run_once()
    assert len(server.requests) == 2, "alerts were delivered to the webhook"
    assert b"SUPERSECRET" not in stderr
