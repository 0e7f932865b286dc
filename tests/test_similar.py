"""More like this: the catalog's images ranked by CLIP image similarity (a tiny random-init CLIP built
from configs) or, without a CLIP model, by the offline colour histograms, labelled so; a planted
near-copy finds its original first; embeddings are made once per image and model; the CLI's --like."""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import dataprep
from assistant.errors import CatalogError
from assistant.store import Store
from assistant.workflows.similar import more_like, target
from imagegen.describe import Describer


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("similar-home")
    assert dataprep.main(["run", "--home", str(home), "--season", "1", "--styles", "cinematic,watercolor", "--engine", "preview"]) == 0
    return home


def image_of(home, season, episode, style):
    store = Store(home, create=False)
    try:
        return home / store.art("Gullhaven", season, episode, style).image["path"]
    finally:
        store.close()


def near_copy(path, folder):
    """The picture a little smaller, with a small mark: the same picture to the eye."""
    image = Image.open(path).convert("RGB")
    image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    ImageDraw.Draw(image).rectangle((4, 4, 20, 20), fill=(255, 255, 255))
    out = folder / "copy.png"
    image.save(out)
    return out


class Counting(Describer):
    """A Describer that counts the pictures it embeds."""

    embedded = 0

    def embed(self, pictures):
        self.embedded += len(pictures)
        return super().embed(pictures)


@pytest.mark.parametrize("clip", [False, True], ids=["offline", "clip"])
def test_a_near_copy_finds_its_catalog_original_first(home, tmp_path, tiny_clip, clip):
    describer = Describer(clip_model=str(tiny_clip)) if clip else Describer()
    original = image_of(home, 1, 4, "watercolor")
    found = more_like(Store(home, create=False), describer, like=near_copy(original, tmp_path), limit=5)
    assert found.hits[0].path == str(original) and (found.hits[0].season, found.hits[0].episode, found.hits[0].style) == (1, 4, "watercolor")
    scores = [h.score for h in found.hits]
    assert scores == sorted(scores, reverse=True) and len(found.hits) == 5
    if clip:
        assert not found.offline and found.method == "CLIP image similarity (tiny-clip0)"
    else:
        assert found.offline and found.method.startswith("offline: colour histograms") and "KEYART_CLIP_MODEL" in found.method


def test_more_like_a_catalog_item_leaves_it_out_and_embeds_each_image_once(home, tiny_clip, tmp_path):
    home = Path(shutil.copytree(home, tmp_path / "home"))
    with sqlite3.connect(home / "catalog.sqlite") as db:
        db.execute("DROP TABLE IF EXISTS image_embeddings")  # none of the other tests' embeddings
    store = Store(home, create=False)
    describer = Counting(clip_model=str(tiny_clip))
    found = more_like(store, describer, like=(1, 3), style="cinematic", limit=20)
    assert found.query == "Gullhaven S01E03 (cinematic)" and all(h.style == "cinematic" for h in found.hits)
    assert len(found.hits) == 7 and (1, 3) not in [(h.season, h.episode) for h in found.hits]  # 8 cinematic pieces, itself left out
    first = describer.embedded
    assert first == 8
    again = more_like(store, describer, like=(1, 0), limit=200)
    assert describer.embedded == first + 8  # only the watercolor images were new to this model
    assert len(again.hits) == 15 and again.query == "Gullhaven S01 season (cinematic)"
    with sqlite3.connect(home / "catalog.sqlite") as db:
        models = dict(db.execute("SELECT model, count(*) FROM image_embeddings GROUP BY model").fetchall())
    assert models[f"clip:{tiny_clip}"] == 16


def test_bad_targets_are_clear_errors(home, tmp_path):
    assert target("S01E03") == (1, 3) and target("s2") == (2, 0) and target("S01 season") == (1, 0)
    with pytest.raises(CatalogError, match="--like takes a catalog code"):
        target("the harbour")
    with pytest.raises(CatalogError, match="S01E09 has no rendered image"):
        more_like(Store(home, create=False), Describer(), like=(1, 9))
    with pytest.raises(CatalogError, match="--limit must be between 1 and 200"):
        more_like(Store(home, create=False), Describer(), like=(1, 3), limit=0)


def test_the_cli_ranks_by_likeness_and_says_how(home, capsys, tiny_clip, monkeypatch):
    assert dataprep.main(["search", "--home", str(home), "--like", "S01E03", "--limit", "3"]) == 0
    out, err = capsys.readouterr()
    assert "by offline: colour histograms" in err and len(out.strip().splitlines()) == 3
    monkeypatch.setenv("KEYART_CLIP_MODEL", str(tiny_clip))
    assert dataprep.main(["search", "--home", str(home), "--like", "S01E03", "--style", "watercolor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["offline"] is False and data["query"] == "Gullhaven S01E03 (watercolor)" and all(h["style"] == "watercolor" for h in data["hits"])
    assert dataprep.main(["search", "--home", str(home), "storm", "--like", "S01E03"]) == 2
    assert "not both" in capsys.readouterr().err
    assert dataprep.main(["search", "--home", str(home), "--like", "nowhere.png"]) == 2
    assert dataprep.main(["search", "--home", str(home)]) == 2
