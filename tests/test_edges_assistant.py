"""The language side's own refusals, below the command lines: a broken blocklist, home or catalog
file is one clear error raised before anything is written, and read-only views create nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from imagegen.errors import KeyartError

from assistant import policy
from assistant.catalog import load_catalog
from assistant.conversations import Conversations
from assistant.errors import CatalogError, PolicyViolation, StorageError
from assistant.store import DB_NAME as CATALOG, Store, check_home

GOOD = '{"season": 1, "episode": 1, "summary": "Mara Quill lights the lamp."}'


@pytest.fixture(autouse=True)
def _default_blocklist():
    policy.use_blocklists(())
    yield
    policy.use_blocklists(())


def tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# -- the blocklist --------------------------------------------------------------------------------


def test_a_blocklist_that_is_a_folder_says_so(tmp_path):
    policy.use_blocklists([tmp_path])
    with pytest.raises(PolicyViolation, match="is a folder, not a file; point KEYART_BLOCKLIST"):
        policy.check_blocklist()


def test_a_blocklist_that_is_not_utf8_names_the_file_and_the_variable(tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_bytes(b"gore\n\xff\xfe\n")
    policy.use_blocklists([path])
    with pytest.raises(PolicyViolation) as caught:
        policy.blocked_terms("a lighthouse")
    message = str(caught.value)
    assert str(path) in message and "not UTF-8" in message and "KEYART_BLOCKLIST" in message and "\n" not in message


def test_a_fixed_blocklist_is_read_again(tmp_path):
    path = tmp_path / "blocklist.txt"
    path.write_bytes(b"\xff\n")
    policy.use_blocklists([path])
    with pytest.raises(PolicyViolation):
        policy.check_blocklist()
    path.write_text("gore\n", encoding="utf-8")
    assert policy.blocked_terms("gore at sea") == ["gore"]


# -- homes and stores -----------------------------------------------------------------------------


def test_a_read_only_conversations_view_creates_nothing(tmp_path):
    home = tmp_path / "home"
    view = Conversations(home, create=False)
    assert view.listing() == [] and view.turns("abc") == [] and view.next_turn("abc") == 1
    with pytest.raises(CatalogError, match="no conversation 'UNKNOWN'.*none yet"):
        view.get("UNKNOWN")
    with pytest.raises(CatalogError, match="no conversations"):
        view.start(show="Gullhaven", llm="offline", engine="preview")
    assert not home.exists()


def test_a_read_only_view_reads_conversations_that_exist(tmp_path):
    cid = Conversations(tmp_path).start(show="Gullhaven", llm="offline", engine="preview")
    assert [c.id for c in Conversations(tmp_path, create=False).listing()] == [cid]


def test_a_home_that_is_a_file_is_said_plainly(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder\n")
    for make in (lambda: Conversations(home), lambda: Conversations(home, create=False), lambda: Store(home, create=False), lambda: check_home(home)):
        with pytest.raises(CatalogError, match="is a file, not a folder"):
            make()


def test_checking_a_home_creates_nothing_and_refuses_a_damaged_catalog(tmp_path):
    home = tmp_path / "home"
    check_home(home)  # no home yet: fine, and still none
    assert not home.exists()
    home.mkdir()
    (home / CATALOG).write_bytes(b"this is not an SQLite database" * 64)
    with pytest.raises(StorageError, match=CATALOG):
        check_home(home)
    assert tree(tmp_path) == ["home", f"home/{CATALOG}"]


def test_opening_an_existing_catalog_to_read_adds_no_folder(tmp_path):
    Store(tmp_path / "home").close()
    (tmp_path / "home" / "images").rmdir()
    Store(tmp_path / "home", create=False).close()
    assert not (tmp_path / "home" / "images").exists()


# -- catalog files --------------------------------------------------------------------------------


def test_a_json_number_past_2_64_is_its_rows_problem(tmp_path):
    path = tmp_path / "episodes.json"
    path.write_text(f'[{GOOD}, {{"season": 1, "episode": {2**64 + 1}, "summary": "Past 2^64."}}]', encoding="utf-8")
    catalog = load_catalog(path)
    assert [(e.season, e.episode) for e in catalog.episodes] == [(1, 1)]
    assert [(p.row, p.field) for p in catalog.problems] == [(2, "episode")]


def test_a_json_item_that_is_not_an_object_is_its_rows_problem(tmp_path):
    path = tmp_path / "episodes.json"
    path.write_text(f"[{GOOD}, 7, null]", encoding="utf-8")
    catalog = load_catalog(path)
    assert len(catalog.episodes) == 1 and [(p.row, p.field) for p in catalog.problems] == [(2, ""), (3, "")]
    assert str(catalog.problems[0]) == f"{path}, row 2: is a number, not an object with season, episode and summary"


def test_a_json_file_that_is_not_a_list_is_refused(tmp_path):
    path = tmp_path / "episodes.json"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(CatalogError, match="expected a list of objects"):
        load_catalog(path)


def test_a_jsonl_line_that_is_not_json_is_skipped_and_named(tmp_path):
    path = tmp_path / "episodes.jsonl"
    lines = [GOOD, '{"season": 1, "episode": 2,', "", json.dumps({"season": 1, "episode": 3, "summary": "The ferry."})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    catalog = load_catalog(path)
    assert [e.episode for e in catalog.episodes] == [1, 3]
    [problem] = catalog.problems
    assert (problem.row, problem.field) == (2, "") and "is not JSON" in problem.message


def test_a_jsonl_file_of_no_json_at_all_is_a_file_problem(tmp_path):
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(b"\x00\x01 not json\nnor this\n")
    with pytest.raises(CatalogError, match="cannot be read as JSONL"):
        load_catalog(path)


@pytest.mark.parametrize("name", ["episodes.csv", "shows"])
def test_a_catalog_path_that_is_a_folder_says_so(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(CatalogError, match="is a folder, not a catalog file"):
        load_catalog(tmp_path / name)


def test_no_usable_row_names_the_file_once(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("show,season,episode,title,summary\nHarbour,one,1,Pilot,Text.\nHarbour,1,,Two,Text.\n", encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.count(str(path)) == 1 and "row 1, field 'season'" in message and "row 2, field 'episode'" in message


# -- workflows ------------------------------------------------------------------------------------


def test_render_before_prompts_is_refused_and_creates_no_home(tmp_path):
    from assistant.workflows.build import prepare_build
    from assistant.workflows.service import RenderService

    with pytest.raises(CatalogError, match="python dataprep.py prompts"):
        prepare_build(load_catalog(), tmp_path / "home", command="render", service=RenderService(name="preview"))
    assert tree(tmp_path) == []


def test_a_campaign_with_a_broken_blocklist_writes_no_campaign_json(tmp_path):
    from assistant.models.offline import OfflineModel
    from assistant.workflows.campaign import Tools, brief_from, new_campaign, run
    from assistant.workflows.service import RenderService

    bad = tmp_path / "blocklist.txt"
    bad.write_bytes(b"\xff\xfe\n")
    policy.use_blocklists([bad])
    tools = Tools(folder=tmp_path / "out", model=OfflineModel(), slot=RenderService(name="preview"), catalog=load_catalog(), home=tmp_path / "home")
    with pytest.raises(PolicyViolation, match="not UTF-8"):
        run(new_campaign(brief_from({"season": 1, "episode": 1, "platforms": ["x"]})), tools)
    assert tree(tmp_path) == ["blocklist.txt"]


def test_a_campaign_over_a_damaged_catalog_writes_no_campaign_json(tmp_path):
    from assistant.models.offline import OfflineModel
    from assistant.workflows.campaign import Tools, brief_from, new_campaign, run
    from assistant.workflows.service import RenderService

    (tmp_path / "home").mkdir()
    (tmp_path / "home" / CATALOG).write_bytes(b"garbage" * 100)
    tools = Tools(folder=tmp_path / "out", model=OfflineModel(), slot=RenderService(name="preview"), catalog=load_catalog(), home=tmp_path / "home")
    with pytest.raises(StorageError, match=CATALOG):
        run(new_campaign(brief_from({"season": 1, "episode": 1, "platforms": ["x"]})), tools)
    assert not (tmp_path / "out").exists()
    with pytest.raises(sqlite3.DatabaseError):  # the damaged file is left as it was, for the user to move aside
        sqlite3.connect(tmp_path / "home" / CATALOG).execute("SELECT * FROM sqlite_master").fetchall()


def test_a_campaign_folder_under_a_file_is_refused_before_any_work(tmp_path):
    from assistant.models.offline import OfflineModel
    from assistant.workflows.campaign import Tools, brief_from, new_campaign, run
    from assistant.workflows.service import RenderService

    (tmp_path / "plain").write_text("x\n")
    tools = Tools(folder=tmp_path / "plain" / "out", model=OfflineModel(), slot=RenderService(name="preview"), catalog=load_catalog(), home=tmp_path / "home")
    with pytest.raises(KeyartError, match="is under .*plain, which is a file, not a folder; choose a folder for the campaign"):
        run(new_campaign(brief_from({"season": 1, "episode": 1, "platforms": ["x"]})), tools)
    assert tree(tmp_path) == ["plain"]
