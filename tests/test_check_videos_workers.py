"""``vidssl check-videos --workers K``: the same report, in manifest order, as one process."""
from vidssl.cli import main


def test_two_workers_give_the_one_worker_report(synth_dir, tmp_path, capsys):
    videos = sorted((synth_dir / "videos").glob("*.mp4"))[:10]
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("not a video at all")
    cut = tmp_path / "cut.mp4"  # half a real file
    data = videos[0].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    # bad files first, in the middle and last, so that completion order differs from manifest order
    paths = [cut, *videos[:4], text, *videos[4:], empty]
    (tmp_path / "m.csv").write_text("path\n" + "".join(f"{p}\n" for p in paths))
    reports = {}
    for workers in (1, 2):
        capsys.readouterr()
        assert main(["check-videos", str(tmp_path / "m.csv"), "--workers", str(workers)]) == 1
        reports[workers] = capsys.readouterr().out
    assert reports[2] == reports[1]
    lines = reports[1].splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [f"BAD  {cut}", f"BAD  {text}", f"BAD  {empty}"]
    assert lines[-1] == "10 of 13 videos decode; 3 bad"


def test_workers_below_one_are_refused(synth_dir, capsys):
    assert main(["check-videos", str(synth_dir / "train.csv"), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
