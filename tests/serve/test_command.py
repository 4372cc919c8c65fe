"""The ``handnet serve`` command: the address it prints, its errors, and the default model."""

import json
import subprocess
import sys
import urllib.request

import pytest

from handnet.zoo import architectures
from handnet.cli import main
from handnet.cli import serve as serve_command


@pytest.mark.mnist
def test_the_command_prints_the_address_and_serves(served_folder):
    process = subprocess.Popen(
        [sys.executable, "-m", "handnet", "serve", str(served_folder / "mlp.npz"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert "mlp.npz" in lines[0]
        url = lines[1].split()[1]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/models", timeout=10) as response:
            assert json.loads(response.read())["default"] == "mlp.npz"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_command_names_a_missing_model(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: no such model file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_the_command_refuses_a_port_out_of_range(port, capsys):
    assert main(["serve", "--port", port]) == 2
    assert "--port" in capsys.readouterr().err


class StopAtOnce:
    """A server stand-in: serving ends as if the user pressed Ctrl+C."""

    server_address = ("127.0.0.1", 8000)

    def serve_forever(self):
        raise KeyboardInterrupt

    def server_close(self):
        pass


def test_without_a_model_the_default_cnn_is_trained_into_runs_first(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    (runs / "mlp").mkdir(parents=True)
    architectures.build("mlp", seed=0).save(runs / "mlp" / "model.npz")  # no CNN among them
    trained = []

    def train_quickly(args):  # stands for the minutes of `handnet train --model cnn`
        trained.append((args.model, args.out))
        args.out.mkdir(parents=True)
        architectures.build(args.model, seed=0).save(args.out / "model.npz")
        return 0

    monkeypatch.setattr(serve_command, "RUNS", runs)
    monkeypatch.setattr(serve_command, "DEFAULT_CNN_RUN", runs / "demo")
    monkeypatch.setattr(serve_command.train, "train_command", train_quickly)
    monkeypatch.setattr(serve_command, "make_server", lambda *args: StopAtOnce())

    assert main(["serve"]) == 0
    assert trained == [("cnn", runs / "demo")]
    out = capsys.readouterr().out
    assert "No trained CNN" in out and "training the default cnn" in out
    assert "(default: demo/model.npz)" in out and "mlp/model.npz" in out
    assert "http://127.0.0.1:8000/" in out


def test_without_a_model_a_cnn_in_runs_is_served_as_it_is(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    (runs / "demo").mkdir(parents=True)
    architectures.build("cnn", seed=0).save(runs / "demo" / "model.npz")
    monkeypatch.setattr(serve_command, "RUNS", runs)
    monkeypatch.setattr(serve_command.train, "train_command", pytest.fail)
    monkeypatch.setattr(serve_command, "make_server", lambda *args: StopAtOnce())
    assert main(["serve"]) == 0
    assert "(default: demo/model.npz)" in capsys.readouterr().out
