"""scripts.deploy_space: what goes to the Space, which variables choose the model, token handling."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts import deploy_space

ROOT = Path(__file__).resolve().parent.parent


class RecordingHub:
    """Stands in for huggingface_hub.HfApi (no network in tests): records calls, lists uploaded files."""

    def __init__(self, variables: dict[str, str] | None = None, hardware: str = "a10g-small") -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.uploaded: dict[str, str] = {}
        self.uploaded_bytes: dict[str, bytes] = {}
        self.variables = dict(variables or {})
        self.hardware = hardware  # what the Space runs on now (a new Space: cpu-basic)

    def get_space_runtime(self, repo_id: str):
        return SimpleNamespace(hardware=self.hardware, requested_hardware=None)

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def upload_folder(self, *, folder_path: str, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        root = Path(folder_path)
        self.uploaded = {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace")
                         for p in root.rglob("*") if p.is_file()}
        self.uploaded_bytes = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

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


def test_space_name_the_hub_would_refuse_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    assert deploy_space.main(["me/tutor--v2"]) == 1  # passes owner/name, fails the hub's own rules
    err = capsys.readouterr().err
    assert err == "error: the Space name 'me/tutor--v2' is not valid on the hub: Cannot have -- or .. in repo_id: " \
                  "'me/tutor--v2'.\n"


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


TOKEN = "hf_secret_value_123"


@pytest.fixture
def odd_hub(monkeypatch):
    """A hub on 127.0.0.1 that answers every request 200 with a body set by the test (``{auth}`` is replaced by
    the request's Authorization header, as a careless proxy might echo it). Returns the setter."""
    answer = {"body": ""}

    class Handler(BaseHTTPRequestHandler):
        def reply(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = answer["body"].replace("{auth}", self.headers.get("Authorization", "")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = reply

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", url)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest turns it on
    yield lambda body: answer.update(body=body)
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("body", "detail"), [
    ("<html>502 Bad Gateway ({auth})</html>", r"JSONDecodeError: Expecting value: line 1 column 1 \(char 0\)"),
    ('["unexpected", "{auth}"]', r"TypeError: list indices must be integers or slices, not str"),
    ('{"error": "{auth}"}', r"KeyError: 'url'"),
])
def test_hub_answering_invalid_json_or_another_shape_is_one_line(odd_hub, capsys, body, detail):
    odd_hub(body)
    assert deploy_space.main(["me/llama-tutor"]) == 1
    captured = capsys.readouterr()
    assert re.match(r"error: the Hugging Face Hub sent an answer this script cannot read while creating the Space "
                    rf"\({detail}\); check that HF_ENDPOINT \(http://127.0.0.1:\d+\) is the Hub or a mirror of it",
                    captured.err), captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert TOKEN not in captured.err + captured.out


def test_space_variables_of_another_shape_are_one_line(monkeypatch, capsys):
    class ListingHub(RecordingHub):
        def get_space_variables(self, repo_id: str):
            return [{"key": "TUTOR_ADAPTER", "value": "me/old-lora"}]  # a list where the API promises a mapping

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr("huggingface_hub.HfApi", lambda token: ListingHub())
    assert deploy_space.main(["me/llama-tutor"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the Hugging Face Hub sent an answer this script cannot read while reading the "
                          "Space variables (AttributeError: 'list' object has no attribute 'items');")
    assert err.count("\n") == 1 and TOKEN not in err


# -- CPU Spaces: the GGUF backend ------------------------------------------------------------------

def test_a_new_space_on_free_cpu_hardware_serves_the_gguf_without_torch():
    hub = RecordingHub({"TUTOR_QUANTIZATION": "4bit", "TUTOR_STATIC_CACHE": "1"}, hardware="cpu-basic")
    deploy_space.deploy(hub, args("me/llama-tutor"), ROOT)
    requirements = hub.uploaded["requirements.txt"]
    assert "llama-cpp-python==" in requirements and "gradio==" in requirements
    assert not re.search(r"^(torch|transformers|peft|bitsandbytes|accelerate)\b", requirements, re.MULTILINE)
    assert "--extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cpu" in requirements
    assert hub.variables == {"TUTOR_BASE_MODEL": "unsloth/Llama-3.2-3B-Instruct", "TUTOR_BACKEND": "llamacpp"}
    assert "suggested_hardware: cpu-basic\n" in hub.uploaded["README.md"]


def test_cpu_hardware_takes_a_gguf_from_the_hub_and_refuses_quantization(capsys):
    hub = RecordingHub()
    deploy_space.deploy(hub, args("me/llama-tutor", "--hardware", "cpu-basic", "--gguf",
                                  "me/tutor-GGUF:tutor-q4_k_m.gguf"), ROOT)
    assert hub.variables["TUTOR_GGUF"] == "me/tutor-GGUF:tutor-q4_k_m.gguf"
    assert ("request_space_hardware", ("me/llama-tutor", "cpu-basic"), {}) in hub.calls
    with pytest.raises(deploy_space.DeployError, match=r"--quantization applies to GPU Spaces; cpu-basic serves a "
                                                       r"GGUF"):
        deploy_space.deploy(RecordingHub(), args("me/t", "--hardware", "cpu-basic", "--quantization", "4bit"), ROOT)


def test_moving_a_space_to_a_gpu_drops_the_gguf_settings():
    hub = RecordingHub({"TUTOR_BACKEND": "llamacpp", "TUTOR_GGUF": "me/x:y.gguf"}, hardware="cpu-basic")
    deploy_space.deploy(hub, args("me/llama-tutor", "--hardware", "a10g-small"), ROOT)
    assert hub.variables == {"TUTOR_BASE_MODEL": "unsloth/Llama-3.2-3B-Instruct"}
    assert "torch" in hub.uploaded["requirements.txt"]


@pytest.mark.slow
def test_a_local_adapter_goes_to_a_cpu_space_as_a_gguf_lora(tiny_gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("TUTOR_CACHE_DIR", str(tmp_path / "cache"))
    hub = RecordingHub(hardware="cpu-basic")
    deploy_space.deploy(hub, args("me/llama-tutor", "--adapter", str(tiny_gguf["adapter"]), "--base-model",
                                  str(tiny_gguf["hf"])), ROOT)
    assert hub.uploaded_bytes["adapter-lora.gguf"][:4] == b"GGUF"
    assert hub.variables["TUTOR_ADAPTER"] == "adapter-lora.gguf"
    from inference import load_backend

    lora = tmp_path / "adapter-lora.gguf"  # the Space serves it as uploaded
    lora.write_bytes(hub.uploaded_bytes["adapter-lora.gguf"])
    backend = load_backend("llamacpp", gguf=str(tiny_gguf["f16"]), adapter=str(lora), warmup=False)
    assert "+ LoRA" in backend.description


def test_an_adapter_that_cannot_be_converted_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setattr(deploy_space, "space_hardware", lambda api, parsed: "cpu-basic")
    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", lambda *a, **k: None)
    assert deploy_space.main(["me/llama-tutor", "--adapter", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the adapter must become a GGUF LoRA for a CPU Space, and that failed: ")
    assert err.count("\n") == 1 and "hf_secret_value_123" not in err

