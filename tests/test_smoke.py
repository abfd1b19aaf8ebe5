def test_status_json_counts_every_table(cli):
    result = cli("db", "status", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["at_head"] is True
    assert report["tables"]["ml_training_images"] == 0
    assert "***" in report["url"]
