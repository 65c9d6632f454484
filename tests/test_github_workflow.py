"""The GitHub Actions workflow (.github/workflows/test.yml) runs what README.md ("Test it")
and .ci/run run, on the README's Python and Node, so the three cannot drift apart.

Reads files only; PyYAML comes with drf-spectacular (no dependency of its own).
"""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def readme_test_command() -> str:
    """The indented command line under "## Test it"."""
    return re.search(r"^    (\S.*)$", readme_section("Test it"), re.MULTILINE).group(1)


def ci_run_commands() -> list[str]:
    """.ci/run's commands, without the shebang, comments and its shell set-up."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict]:
    return workflow()["jobs"]["test"]["steps"]


def step_using(action: str) -> dict:
    return next(s for s in steps() if s.get("uses", "").startswith(f"{action}@"))


def test_the_workflow_runs_the_readme_test_command_as_ci_does():
    command = readme_test_command()
    assert ci_run_commands() == [command]
    assert [s["run"].strip() for s in steps() if "run" in s] == [command]


def test_it_runs_on_every_push_and_pull_request_without_secrets():
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean true.
    triggers = workflow()[True]
    assert set(triggers) == {"push", "pull_request"}
    assert "secrets." not in WORKFLOW.read_text()


def test_python_and_node_are_the_readmes_and_actions_are_pinned_by_major_version():
    requirements = readme_section("Run it")
    python = str(step_using("actions/setup-python")["with"]["python-version"])
    node = str(step_using("actions/setup-node")["with"]["node-version"])
    assert f"Python {python}," in requirements
    assert f"Node.js {node} " in requirements
    for step in steps():
        if "uses" in step:
            assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), step["uses"]
