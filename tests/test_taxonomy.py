from guardstack import taxonomy


def test_category_ids_are_unique_and_cover_the_required_harms():
    ids = taxonomy.CATEGORY_IDS
    assert len(ids) == len(set(ids))
    required = {"cbrn", "weapons", "cyber", "violent_crime", "nonviolent_crime", "sexual_minors",
                "sexual", "violence_graphic", "self_harm", "psychological_harm", "hate",
                "harassment", "influence_ops", "privacy", "jailbreak"}
    assert required <= set(ids)


def test_every_category_says_what_is_in_and_what_is_out():
    for cat in taxonomy.CATEGORIES:
        assert len(cat.covers) > 60, cat.id
        assert len(cat.excludes) > 40, cat.id
        assert "Out of scope" in cat.definition


def test_mappings_point_at_known_codes_and_names():
    for cat in taxonomy.CATEGORIES:
        for code in cat.s_codes:
            assert code in taxonomy.LLAMA_GUARD_3, (cat.id, code)
        for name in cat.openai:
            assert name in taxonomy.OPENAI_CATEGORIES, (cat.id, name)
    for _name, target in taxonomy.LLAMA_GUARD_3.values():
        assert target is None or target in taxonomy.BY_ID


def test_only_jailbreak_is_a_technique():
    assert [c.id for c in taxonomy.CATEGORIES if c.is_technique] == ["jailbreak"]


def test_openai_scores_take_the_max_over_contributing_categories():
    out = taxonomy.openai_scores({"cyber": 0.2, "nonviolent_crime": 0.7, "hate": 0.9})
    assert set(out) == set(taxonomy.OPENAI_CATEGORIES)
    assert out["illicit"] == 0.7
    assert out["hate"] == 0.9
    assert out["sexual/minors"] == 0.0


def test_unknown_category_error_lists_the_known_ones():
    try:
        taxonomy.get("nope")
    except KeyError as exc:
        assert "cbrn" in str(exc)
    else:
        raise AssertionError("expected KeyError")
