"""scripts.deploy_space: what goes to the Space, which variables choose the model, token handling."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from scripts import deploy_space

ROOT = Path(__file__).resolve().parent.parent


class RecordingHub:
    """Stands in for huggingface_hub.HfApi (no network in tests): records calls, lists uploaded files."""

    def __init__(self, variables: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.uploaded: dict[str, str] = {}
        self.variables = dict(variables or {})

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def upload_folder(self, *, folder_path: str, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        root = Path(folder_path)
        self.uploaded = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace")
                         for p in root.rglob("*") if p.is_file()}

    def add_space_variable(self, repo_id: str, key: str, value: str):
        self.variables[key] = value

    def get_space_variables(self, repo_id: str):
        return {k: SimpleNamespace(key=k, value=v) for k, v in self.variables.items()}

    def delete_space_variable(self, repo_id: str, key: str):
        del self.variables[key]

    def request_space_hardware(self, repo_id: str, hardware: str):
        self.calls.append(("request_space_hardware", (repo_id, hardware), {}))


def args(*argv: str):
    return deploy_space.build_parser().parse_args(list(argv))


def test_uploads_the_app_files_only_with_the_space_front_matter():
    hub = RecordingHub()
    url = deploy_space.deploy(hub, args("me/llama-tutor", "--adapter", "me/tutor-lora", "--private"), ROOT)
    assert url == "https://huggingface.co/spaces/me/llama-tutor"
    assert hub.calls[0] == ("create_repo", ("me/llama-tutor",),
                            {"repo_type": "space", "space_sdk": "gradio", "private": True, "exist_ok": True})
    files = set(hub.uploaded)
    assert {"app.py", "requirements.txt", "README.md", "ui/chat.py", "ui/quiz.py", "inference/__init__.py",
            "quiz/generate.py"} <= files
    assert not any(f.startswith(("tests/", ".venv/", "training/", "evaluation/", "scripts/")) for f in files)
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    readme = hub.uploaded["README.md"]
    assert readme.startswith("---\ntitle: Llama Tutor\n")
    assert "sdk: gradio\nsdk_version: 6.31.0\napp_file: app.py\n" in readme
    assert "models:\n  - unsloth/Llama-3.2-3B-Instruct\n  - me/tutor-lora\n" in readme
    assert readme.count("\n---\n") == 1  # exactly one front matter block
    assert hub.variables == {"TUTOR_BASE_MODEL": "unsloth/Llama-3.2-3B-Instruct", "TUTOR_ADAPTER": "me/tutor-lora"}


def test_adapter_none_switches_the_space_back_to_the_base_model():
    hub = RecordingHub({"TUTOR_ADAPTER": "me/old-lora"})
    deploy_space.deploy(hub, args("me/llama-tutor", "--adapter", "none", "--quantization", "4bit",
                                  "--hardware", "a10g-small"), ROOT)
    assert hub.variables == {"TUTOR_BASE_MODEL": "unsloth/Llama-3.2-3B-Instruct", "TUTOR_QUANTIZATION": "4bit"}
    assert ("request_space_hardware", ("me/llama-tutor", "a10g-small"), {}) in hub.calls


def test_redeploy_without_adapter_keeps_and_reports_the_current_one(capsys):
    hub = RecordingHub({"TUTOR_ADAPTER": "me/old-lora"})
    deploy_space.deploy(hub, args("me/llama-tutor"), ROOT)
    assert hub.variables["TUTOR_ADAPTER"] == "me/old-lora"
    assert "keeps its TUTOR_ADAPTER='me/old-lora'; pass --adapter none" in capsys.readouterr().out


def test_missing_token_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert deploy_space.main(["me/llama-tutor"]) == 1
    assert capsys.readouterr().err.startswith("error: HF_TOKEN is not set: create a token with write access")


def test_bad_space_name_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    assert deploy_space.main(["llama-tutor"]) == 1
    err = capsys.readouterr().err
    assert "must be written owner/name" in err and "hf_secret_value_123" not in err


def test_hub_errors_never_show_the_token(monkeypatch, capsys):
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    def refuse(api, parsed, root=ROOT):
        request = httpx.Request("POST", "https://huggingface.co/api/repos/create")
        raise HfHubHTTPError(f"401 Client Error: Unauthorized (token {api.token})",
                             response=httpx.Response(401, request=request))

    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setattr(deploy_space, "deploy", refuse)
    assert deploy_space.main(["me/llama-tutor"]) == 1
    captured = capsys.readouterr()
    assert "error: the Hugging Face Hub refused the deploy: 401 Client Error" in captured.err
    assert "hf_secret_value_123" not in captured.err + captured.out


def test_unreachable_hub_is_one_clear_line(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest turns it on
    assert deploy_space.main(["me/llama-tutor"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: could not reach the Hugging Face Hub ([Errno 111] Connection refused)")
    assert err.count("\n") == 1
    assert "hf_secret_value_123" not in err


def test_readme_starts_with_the_front_matter_the_script_writes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(deploy_space.front_matter()), "README.md front matter differs from the deploy script's"
