"""The command line: outputs, JSON shapes and exit codes (0 ok, 1 bad files, 2 bad usage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sampletool.cli import main
from sampletool.tool import SoundSampleTool


@pytest.fixture
def bad_file(tmp_path) -> Path:
    p = tmp_path / "broken.wav"
    p.write_bytes(os.urandom(2000))
    return p


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json(capsys, tiny_bundle, sounds, bad_file):
    code, out, err = run(
        capsys, "classify", sounds[0], bad_file, sounds[1], "--model", tiny_bundle, "--json"
    )
    assert code == 1
    rows = json.loads(out)
    assert [r["path"] for r in rows] == [str(sounds[0]), str(bad_file), str(sounds[1])]
    assert set(rows[0]) == {"path", "class", "confidence", "unsure", "runner_up",
                            "runner_up_confidence", "probabilities"}  # fmt: skip
    probs = rows[0]["probabilities"]
    assert set(probs) == {"class0", "class1", "class2"}
    ranked = sorted(probs, key=probs.get, reverse=True)
    assert [rows[0]["class"], rows[0]["runner_up"]] == ranked[:2]
    assert rows[0]["confidence"] == probs[ranked[0]]
    # the tiny model's threshold is the default 0.5 (it was never calibrated)
    assert rows[0]["unsure"] == (probs[ranked[0]] < 0.5)
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4
    assert rows[1] == {
        "path": str(bad_file),
        "error": "not an audio file (its content is no format we can read)",
    }
    assert err.count("\n") == 1 and "broken.wav" in err


def test_classify_text_all_good(capsys, tiny_bundle, sounds):
    code, out, err = run(capsys, "classify", *sounds, "--model", tiny_bundle)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].split("\t")[0] == str(sounds[0])


def test_classify_without_classifier_exits_2(capsys, tiny_bundle_no_classes, sounds):
    code, _, err = run(capsys, "classify", sounds[0], "--model", tiny_bundle_no_classes)
    assert code == 2 and "has no classifier" in err and err.count("\n") == 1


def test_embed_rows_in_order_with_nan_for_bad_files(
    capsys, tiny_bundle, sounds, bad_file, tmp_path
):
    out = tmp_path / "vecs.npy"
    code, _stdout, err = run(
        capsys,
        "embed",
        sounds[0],
        bad_file,
        sounds[2],
        "--model",
        tiny_bundle,
        "-o",
        out,
        "--workers",
        "0",
    )
    assert code == 1 and "broken.wav" in err
    v = np.load(out)
    assert v.shape == (3, 8) and v.dtype == np.float32
    assert np.isnan(v[1]).all() and np.isfinite(v[[0, 2]]).all()
    from sampletool.tool import SoundSampleTool

    t = SoundSampleTool(tiny_bundle)
    assert np.allclose(v[2], t.embed(sounds[2]), atol=1e-5)


def test_embed_of_nothing_readable_writes_nan_rows_and_names_the_files(
    capsys, tiny_bundle, bad_file, tmp_path
):
    out = tmp_path / "vecs.npy"
    code, _stdout, err = run(capsys, "embed", bad_file, "--model", tiny_bundle, "-o", out,
                             "--workers", "0")  # fmt: skip
    assert code == 1 and "broken.wav" in err and "Traceback" not in err
    assert np.isnan(np.load(out)).all()


def test_embed_needs_npy(capsys, tiny_bundle, sounds, tmp_path):
    code, _, err = run(capsys, "embed", sounds[0], "--model", tiny_bundle, "-o", tmp_path / "x.csv")
    assert code == 2 and ".npy" in err


def test_generate(capsys, tiny_bundle, sounds, tmp_path):
    out = tmp_path / "blend.wav"
    args = ["generate", *sounds[:2], "--model", tiny_bundle, "-o", out, "--weights", "1", "-0.5"]
    same = ["--no-normalize", "--seed", "3", "--variance", "0.1"]
    code, _stdout, err = run(capsys, *args, *same, "--rate", "model", "--keep-tail")
    assert code == 0 and err == "" and out.exists()
    y, sr = sf.read(out)
    assert sr == 16000 and len(y) == 32000 and np.isfinite(y).all() and np.abs(y).max() <= 1
    # the same sound as the API's: the files' decoder latents, blended
    t = SoundSampleTool(tiny_bundle, device="cpu")
    api = t.generate(None, sounds[:2], [1, -0.5], normalize_weights=False, variance=0.1, seed=3)
    assert np.abs(y - api).max() < 1e-3  # 16-bit rounding
    # by default, made for a DAW as the app's Save is: the tail cut, at 44.1 kHz
    code, stdout, _err = run(capsys, *args, *same)
    daw, rate = sf.read(out)
    from sampletool.export import resample, trim_tail

    expected = resample(trim_tail(api, 16000), 16000, 44100)
    assert code == 0 and rate == 44100 and len(daw) == len(expected) <= 44100 * 2
    assert np.abs(daw - expected).max() < 1e-3 and "at 44100 Hz" in stdout
    assert run(capsys, *args, *same, "--rate", "48000")[0] == 0 and sf.info(out).samplerate == 48000


def test_generate_warnings_and_partial_failure(capsys, tiny_bundle, sounds, bad_file, tmp_path):
    out = tmp_path / "g.wav"
    code, _, err = run(capsys, "generate", sounds[0], bad_file, "--model", tiny_bundle, "-o", out)
    assert code == 1 and "broken.wav" in err and out.exists()
    code, _, err = run(
        capsys, "generate", *sounds, "--weights", "1", "2", "--model", tiny_bundle, "-o", out
    )
    assert code == 0 and "equal weights" in err
    code, _, err = run(
        capsys,
        "generate",
        sounds[0],
        sounds[1],
        "--weights",
        "1",
        "-1",
        "--model",
        tiny_bundle,
        "-o",
        out,
    )
    assert code == 0 and "sum to zero" in err
    out.unlink()
    code, _, err = run(capsys, "generate", bad_file, "--model", tiny_bundle, "-o", out)
    assert code == 1 and "nothing generated" in err and not out.exists()


def test_generate_into_a_folder_says_so(capsys, tiny_bundle, sounds, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(capsys, "generate", sounds[0], "-o", str(out), "--model", str(tiny_bundle))
    assert code == 2 and err == f"sampletool: error: {out}: is a folder; give a file name\n"
    assert not list(out.iterdir())  # no temporary file left behind


def test_random_generation_without_files(capsys, tiny_bundle, tmp_path):
    out = tmp_path / "r.wav"
    assert run(capsys, "generate", "--model", tiny_bundle, "-o", out, "--seed", "1")[0] == 0
    assert out.exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["generate", "--variance", "-1"], "--variance"),
        (["generate", "--seed", "abc"], "invalid int value"),
        (["classify"], "required"),
        (["classify", "x.wav", "--offset", "-2"], "--offset"),
        (["frobnicate"], "invalid choice"),
        (["classify", "x.wav", "--device", "gpu0"], "unknown device 'gpu0'"),
        (["generate", "--device", ""], "unknown device ''"),
        (["embed", "a.wav"], "required"),
        ([], "required"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, tiny_bundle, argv, needle):
    if argv and argv[0] in ("generate", "classify"):
        argv = [*argv, "--model", str(tiny_bundle)]
    code, _out, err = run(capsys, *argv)
    assert code == 2 and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("model", ["nonexistent-dir/", "NOT_A_MODEL"])
def test_a_model_folder_that_is_not_a_model_exits_2(capsys, tmp_path, sounds, model):
    folder = tmp_path / "empty-model"
    folder.mkdir()
    target = str(folder) if model == "NOT_A_MODEL" else str(tmp_path / model)
    code, _, err = run(capsys, "classify", sounds[0], "--model", target)
    assert code == 2 and err.count("\n") == 1 and err.startswith("sampletool: error:")


def test_models_lists_bundles(capsys, monkeypatch, tiny_bundle):
    monkeypatch.setenv("SAMPLETOOL_MODEL_PATH", str(tiny_bundle.parent))
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    names = {m["name"]: m for m in json.loads(out)}
    assert names["tiny"]["classes"] == ["class0", "class1", "class2"]
    assert names["tiny"]["kind"] == "vae"
    code, out, _ = run(capsys, "models")
    assert "tiny\tvae\tclass0, class1, class2" in out


def test_console_script_exit_code_and_no_traceback(tmp_path, sounds):
    """The real executable, as a user runs it."""
    exe = Path(sys.executable).parent / "sampletool"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "sampletool"]
    r = subprocess.run(
        [*cmd, "classify", str(sounds[0]), "--model", str(tmp_path)], capture_output=True, text=True
    )
    assert (
        r.returncode == 2 and "Traceback" not in r.stderr and "not a Sample Tool model" in r.stderr
    )
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "generate" in r.stdout and "classify" in r.stdout


# --- issue 24 ----------------------------------------------------------------------------------


def test_names_with_newlines_and_tabs_keep_one_line_and_field_each(capsys, tiny_bundle, tmp_path):
    from tests.corpus.bad_files import names_with_control_characters

    paths = names_with_control_characters(tmp_path / "odd")
    code, out, err = run(capsys, "classify", *paths, "--model", tiny_bundle)
    assert code == 0 and err == ""
    lines = out.split("\n")[:-1]
    assert len(lines) == 3 and all(line.count("\t") == 2 for line in lines)
    assert [line.split("\t")[0] for line in lines] == [
        f'"{tmp_path}/odd/new\\nline.wav"',
        f'"{tmp_path}/odd/tab\\there.wav"',
        f'"{tmp_path}/odd/carriage\\rreturn.wav"',
    ]
    code, out, _ = run(capsys, "classify", *paths[:1], "--model", tiny_bundle, "--json")
    assert json.loads(out)[0]["path"] == str(paths[0])  # JSON needs no quoting of its own
    bad = tmp_path / "odd" / "bro\nken.wav"
    bad.write_bytes(b"\0" * 100)
    code, _, err = run(capsys, "classify", bad, "--model", tiny_bundle)
    assert code == 1 and err.count("\n") == 1 and '"' + str(bad).replace("\n", "\\n") + '"' in err
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    assert "C escapes" in " ".join(capsys.readouterr().out.split())


def test_similar_quotes_odd_names(capsys, tiny_bundle, tmp_path):
    from tests.corpus.bad_files import names_with_control_characters

    paths = names_with_control_characters(tmp_path / "lib")
    common = ["--model", tiny_bundle, "--db", tmp_path / "c.sqlite"]
    assert run(capsys, "index", tmp_path / "lib", *common, "--workers", "0")[0] == 0
    code, out, _ = run(capsys, "similar", paths[0], "--library", tmp_path / "lib", *common)
    assert code == 0
    lines = out.split("\n")[:-1]
    assert len(lines) == 2 and all(line.count("\t") == 1 for line in lines)
    assert {line.split("\t")[1] for line in lines} == {
        f'"{tmp_path}/lib/tab\\there.wav"',
        f'"{tmp_path}/lib/carriage\\rreturn.wav"',
    }


def test_similar_with_an_unreadable_target_exits_1(capsys, tiny_bundle, tmp_path, sounds):
    from tests.corpus.bad_files import random_bytes_mp3

    common = ["--model", tiny_bundle, "--db", tmp_path / "c.sqlite"]
    assert run(capsys, "index", sounds[0].parent, *common, "--workers", "0")[0] == 0
    target = random_bytes_mp3(tmp_path / "elsewhere")
    code, out, err = run(capsys, "similar", target, "--library", sounds[0].parent, *common)
    assert (code, out) == (1, "")
    assert (
        err == f"sampletool: {target}: not an audio file (its content is no format we can read)\n"
    )


WORKERS_CANNOT_START = """
import multiprocessing, sys
multiprocessing.set_executable("/bin/false")  # as in a bundle whose interpreter cannot run
from sampletool.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_workers_that_cannot_start_are_an_error_not_a_silent_success(tmp_path, tiny_bundle,
                                                                     sounds):  # fmt: skip
    files = [str(p) for p in sounds * 4]
    out = tmp_path / "v.npy"
    r = subprocess.run([sys.executable, "-c", WORKERS_CANNOT_START, "embed", *files, "-o",
                        str(out), "--model", str(tiny_bundle), "--workers", "2"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and r.stdout == "" and not out.exists()
    # multiprocessing's resource tracker (run by the same broken interpreter) may add its own
    # warning, before or after ours
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("sampletool: error:")]
    assert len(said) == 1, r.stderr
    assert said[0].startswith("sampletool: error: the worker processes could not be started (")
    assert "Traceback" not in r.stderr


def test_a_closed_stdout_is_still_a_quiet_success(tmp_path, tiny_bundle, sounds):
    r = subprocess.run(
        f"{sys.executable} -m sampletool classify {' '.join(map(str, sounds * 300))} --model "
        f"{tiny_bundle} | head -c 1; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0 and r.stderr == "" and len(r.stdout) == 1


def test_index_of_a_folder_with_no_audio_says_so(capsys, tiny_bundle, tmp_path):
    lib = tmp_path / "lib"
    (lib / "notes").mkdir(parents=True)
    (lib / "notes" / "readme.txt").write_text("no sounds here")
    common = ["--model", tiny_bundle, "--db", tmp_path / "c.sqlite", "--workers", "0"]
    code, out, err = run(capsys, "index", lib, *common)
    assert code == 0 and out.startswith("0 indexed")
    assert err == (f"sampletool: {lib}: no audio files here or in its sub-folders (a scan reads "
                   "WAV, AIFF, FLAC, Ogg and MP3 files)\n")  # fmt: skip
    sf.write(lib / "notes" / "tone.wav", np.sin(np.arange(8000) / 10.0) * 0.5, 16000)
    code, out, err = run(capsys, "index", lib, *common)
    assert (code, err) == (0, "") and out.startswith("1 indexed")
    code, out, err = run(capsys, "index", lib, *common)  # unchanged: nothing to say
    assert (code, err) == (0, "") and "1 unchanged" in out
