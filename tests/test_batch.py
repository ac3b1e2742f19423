"""The Ray batch (issue 15) on a real local Ray (2 CPUs, no dashboard, one session for the module)
and clips generated from the astronaut photo: a broken input among good ones, a worker killed
mid-batch, an interrupted batch resumed, and batch results equal to single-input runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is installed by requirements/batch.txt (tools/setup.sh)")

from sequence_fixtures import moving_frame, write_folder, write_video  # noqa: E402

from inference.batch.driver import run_batch  # noqa: E402
from inference.batch.inputs import STATE_DIR, BatchSettings, plan, unique_names  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "inference" / "samples" / "astronaut.jpg"
FRAMES = 40
LONG = 150  # the clip a worker is killed in: long enough to be caught mid-input by a 0.5 s poll


@pytest.fixture(scope="module")
def cluster() -> str:
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("clips")
    paths = {f"take{k}": str(write_video(folder / f"take{k}.avi", [moving_frame(i, FRAMES, seed=k)
                                                                    for i in range(FRAMES)])) for k in range(3)}
    paths["long"] = str(write_video(folder / "long.avi", [moving_frame(i, LONG, seed=7) for i in range(LONG)]))
    write_folder(folder / "shot", [moving_frame(i, 8, seed=5) for i in range(8)])
    (folder / "broken.mp4").write_bytes(b"not a video" * 100)
    return {**paths, "shot": str(folder / "shot"), "broken": str(folder / "broken.mp4"),
            "missing": str(folder / "missing.avi"), "photo": str(PHOTO)}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inference", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.fixture(scope="module")
def reference(cluster: str, clips: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The command line joining the module's cluster (--ray) with every kind of input, broken ones too."""
    out = tmp_path_factory.mktemp("reference")
    names = ["take0", "take1", "take2", "long", "shot", "photo", "broken", "missing"]
    result = run_cli("batch", *(clips[n] for n in names), "--out", str(out), "--workers", "2", "--ray", cluster,
                     "--csv", "--progress")
    assert result.returncode == 1, result.stderr  # two inputs failed
    total = 3 * FRAMES + LONG + 8 + 1
    lines = [line for line in result.stderr.splitlines() if " inputs, " in line]
    assert lines[-1].startswith(f"8/8 inputs, {total}/{total} frames, ") and " fps" in lines[-1]
    assert json.loads(result.stdout.splitlines()[-1])["failed"] == 2
    failures = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 2 and any("broken.mp4" in f for f in failures) and any("missing.avi" in f for f in failures)
    return out


def arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def assert_same_npz(a: Path, b: Path) -> None:
    first, second = arrays(a), arrays(b)
    assert sorted(first) == sorted(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=f"{a.name}: {name}")


def test_broken_inputs_fail_by_name_and_the_rest_finish(reference: Path) -> None:
    summary = json.loads((reference / "batch-summary.json").read_text())
    status = {Path(r["input"]).name: r["status"] for r in summary["results"]}
    assert status == {"take0.avi": "done", "take1.avi": "done", "take2.avi": "done", "long.avi": "done", "shot": "done",
                      "astronaut.jpg": "done", "broken.mp4": "failed", "missing.avi": "failed"}
    assert summary["ray"] and summary["frames"] == 3 * FRAMES + LONG + 8 + 1
    errors = {Path(r["input"]).name: r["error"] for r in summary["results"] if r["status"] == "failed"}
    assert "cannot be opened as a video" in errors["broken.mp4"] and "does not exist" in errors["missing.avi"]
    assert all(r["seconds"] > 0 for r in summary["results"] if r["status"] == "done")
    for name in ("take0.npz", "take0.csv", "shot.npz", "shot.csv", "astronaut.json"):
        assert (reference / name).is_file(), name
    assert not (reference / "broken.npz").exists() and not list(reference.rglob("*.tmp"))
    header = (reference / "take0.csv").read_text().splitlines()
    assert header[0].startswith("frame,time,found,expression:") and len(header) == FRAMES + 1


def test_batch_results_equal_single_runs(reference: Path, clips: dict[str, str], tmp_path: Path) -> None:
    single = run_cli(clips["take1"], "--out", str(tmp_path / "take1.npz"))
    assert single.returncode == 0, single.stderr
    assert_same_npz(reference / "take1.npz", tmp_path / "take1.npz")
    photo = run_cli(clips["photo"])
    assert photo.returncode == 0, photo.stderr
    assert (reference / "astronaut.json").read_text() == photo.stdout


def test_a_killed_worker_has_its_input_retried(cluster: str, reference: Path, clips: dict[str, str],
                                               tmp_path: Path) -> None:
    killed: dict[str, object] = {}

    def kill_a_busy_worker(progress) -> None:  # type: ignore[no-untyped-def]
        busy = [state for state in progress.workers if state["input"] and state["frames"] >= 3]
        if busy and not killed:
            killed.update(busy[0])
            os.kill(busy[0]["pid"], signal.SIGKILL)

    summary = run_batch([clips["long"], clips["take0"], clips["take1"]], tmp_path, workers=2,
                        report=kill_a_busy_worker)
    assert killed, "no worker was caught mid-input"
    assert [r["status"] for r in summary["results"]] == ["done"] * 3
    retried = next(r for r in summary["results"] if r["name"] == killed["input"])
    assert retried["worker_pid"] != killed["pid"]  # finished by the restarted worker
    for name in ("long", "take0", "take1"):
        assert_same_npz(reference / f"{name}.npz", tmp_path / f"{name}.npz")
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_interrupted_batch_resumes_with_identical_results(cluster: str, reference: Path, clips: dict[str, str],
                                                             tmp_path: Path) -> None:
    inputs = [clips["take0"], clips["take1"], clips["take2"], clips["shot"]]
    settings = BatchSettings(csv=True)

    def interrupt_after_the_first(progress) -> None:  # type: ignore[no-untyped-def]
        if progress.inputs_done >= 1 and not progress.finished:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(inputs, tmp_path, settings, workers=1, report=interrupt_after_the_first)
    first = json.loads((tmp_path / "batch-summary.json").read_text())
    finished = [r["name"] for r in first["results"] if r["status"] == "done"]
    assert finished and first["not_run"] >= 1
    assert sorted(p.stem for p in (tmp_path / STATE_DIR).iterdir()) == sorted(finished)
    kept = {name: (tmp_path / f"{name}.npz").stat().st_mtime_ns for name in finished}

    summary = run_batch(inputs, tmp_path, settings, workers=2)
    status = {r["name"]: r["status"] for r in summary["results"]}
    assert all(status[name] == "skipped" for name in finished)
    assert sorted(status.values()).count("done") == len(inputs) - len(finished)
    assert all((tmp_path / f"{name}.npz").stat().st_mtime_ns == kept[name] for name in finished)
    for name in ("take0", "take1", "take2", "shot"):
        assert_same_npz(reference / f"{name}.npz", tmp_path / f"{name}.npz")
        assert (reference / f"{name}.csv").read_bytes() == (tmp_path / f"{name}.csv").read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))

    # Everything finished: a third run skips all of it by content hash and never starts Ray.
    again = run_cli("batch", *inputs, "--out", str(tmp_path), "--csv")
    assert again.returncode == 0, again.stderr
    final = json.loads((tmp_path / "batch-summary.json").read_text())
    assert final["skipped"] == len(inputs) and final["ray"] is None


def test_a_changed_input_is_run_again(clips: dict[str, str], tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    clip.write_bytes(Path(clips["take2"]).read_bytes())
    run_batch([str(clip)], tmp_path / "out", workers=1, plain=True)
    write_video(clip, [moving_frame(i, 6, seed=9) for i in range(6)])  # same name, new content
    summary = run_batch([str(clip)], tmp_path / "out", workers=1, plain=True)
    assert summary["done"] == 1 and summary["frames"] == 6


def test_names_are_unique_and_independent_of_order() -> None:
    paths = ["a/take.mov", "b/take.mov", "c/other.mp4", "batch-summary.mov"]
    names = unique_names(paths)
    assert len(set(names)) == 4 and names[2] == "other"
    assert names[0].startswith("take-") and names[3].startswith("batch-summary-")
    assert unique_names(list(reversed(paths))) == list(reversed(names))


def test_live_link_csv_is_a_batch_input(tmp_path: Path) -> None:
    """Issue 14: a Live Link Face CSV is read as a take; a malformed one fails at planning, by file and line."""
    from inference.batch.work import Worker
    from inference.payloads import read_livelink
    from inference.sequence.livelink import Take, write_take
    from inference.sequence.pipeline import load_result

    broken = tmp_path / "face_take.csv"
    broken.write_text("Timecode,BlendShapeCount,EyeBlinkLeft\n")
    rng = np.random.default_rng(3)
    good = write_take(tmp_path / "good.csv", Take(times=np.arange(30) / 60, units=rng.uniform(0, 1, (30, 52)),
                                                   head=np.zeros((30, 3)), eyes=np.zeros((30, 2, 3))))
    out = tmp_path / "out"
    bad_item, item = plan([str(broken), str(good)], out, BatchSettings())
    assert bad_item.kind == "livelink" and bad_item.error is not None
    assert str(broken) in bad_item.error and "Live Link Face" in bad_item.error and "line 1" in bad_item.error
    assert item.kind == "livelink" and item.error is None and item.frames == 30
    record = Worker(BatchSettings(), str(out)).process(item)
    assert record["status"] == "done" and record["frames"] == 30
    expected = read_livelink(str(good), None, 60).processed()
    np.testing.assert_allclose(load_result(out / "good.npz").expression, expected.expression, atol=1e-6)


def test_neutral_and_min_confidence_reach_each_input_as_on_the_single_command_line(tmp_path: Path) -> None:
    """`--neutral START:END` calibrates each sequence on its own frames, as `python -m inference
    take.csv --neutral ...` does; a range outside one input fails that input by name, a range on a
    photo fails the photo, and the rest finish."""
    from inference.batch.work import Worker
    from inference.sequence.livelink import Take, write_take
    from inference.sequence.pipeline import load_result

    rng = np.random.default_rng(5)
    take = write_take(tmp_path / "take.csv", Take(times=np.arange(40) / 60, units=rng.uniform(0, 1, (40, 52)),
                                                  head=np.zeros((40, 3)), eyes=np.zeros((40, 2, 3))))
    short = write_take(tmp_path / "short.csv", Take(times=np.arange(8) / 60, units=rng.uniform(0, 1, (8, 52)),
                                                    head=np.zeros((8, 3)), eyes=np.zeros((8, 2, 3))))
    single = run_cli(str(take), "--out", str(tmp_path / "single.npz"), "--neutral", "20:29", "--min-confidence", "0.5",
                     "--quiet")
    assert single.returncode == 0, single.stderr
    settings = BatchSettings(neutral="20:29", min_confidence=0.5)
    out = tmp_path / "out"
    records = {item.name: Worker(settings, str(out)).process(item)
               for item in plan([str(take), str(short), str(PHOTO)], out, settings)}
    assert records["take"]["status"] == "done"
    np.testing.assert_allclose(load_result(out / "take.npz").expression,
                               load_result(tmp_path / "single.npz").expression, atol=1e-6)
    plain = tmp_path / "plain"
    assert Worker(BatchSettings(), str(plain)).process(plan([str(take)], plain, BatchSettings())[0])["status"] == "done"
    assert not np.allclose(load_result(plain / "take.npz").expression, load_result(out / "take.npz").expression)
    assert records["short"]["status"] == "failed" and str(short) in records["short"]["error"]
    assert "outside" in records["short"]["error"] and not (out / "short.npz").exists()
    photo = records[next(n for n in records if n not in ("take", "short"))]
    assert photo["status"] == "failed" and "needs a sequence's frames" in photo["error"]
    # A photo reference is part of the key: another photo is another result.
    other = BatchSettings(neutral=str(PHOTO), neutral_sha256="0" * 64)
    assert plan([str(take)], out, other)[0].key != plan([str(take)], out, settings)[0].key
    bad = run_cli("batch", str(take), "--out", str(tmp_path / "bad"), "--neutral", "5:2")
    assert bad.returncode == 2 and "empty or negative" in bad.stderr
