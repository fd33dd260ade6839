"""``mask_mounts``: the docker mounts that hide ``SandboxConfig.hidden`` paths inside mounted folders
(no engine needed; the masks at work are tested in tests/security/test_package_data.py)."""
from __future__ import annotations

import os

from pytest_mlgym.sandbox.docker import mask_mounts
from pytest_mlgym.sandbox.docker.masks import TMPFS_MASK


def test_folders_get_a_tmpfs_and_files_an_empty_read_only_file_each(tmp_path):
    root, other = tmp_path / "prefix", tmp_path / "elsewhere"
    (root / "pkg" / "data").mkdir(parents=True)
    (root / "pkg" / "a.csv").write_text("answers")
    (root / "pkg" / "b.csv").write_text("answers")
    (other / "c.csv").parent.mkdir()
    (other / "c.csv").write_text("not mounted")
    hidden = [root / "pkg" / "data", root / "pkg" / "a.csv", root / "pkg" / "b.csv", root / "pkg" / "a.csv",
              root / "pkg" / "missing.csv", other / "c.csv", root]
    tmpfs, binds = mask_mounts(hidden, [root])
    assert tmpfs == {str(root / "pkg" / "data"): TMPFS_MASK}  # not the mounted root itself, not other/
    assert sorted(v["bind"] for v in binds.values()) == [str(root / "pkg" / "a.csv"), str(root / "pkg" / "b.csv")]
    assert {v["mode"] for v in binds.values()} == {"ro"} and len(set(binds)) == 2  # distinct sources
    for source in binds:
        st = os.stat(source)
        assert st.st_size == 0 and not st.st_mode & 0o222
    assert mask_mounts(hidden, [root]) == (tmpfs, binds)  # the same empty files next time
    assert mask_mounts(hidden, []) == ({}, {})
