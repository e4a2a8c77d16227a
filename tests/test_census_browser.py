"""census.html in headless Chromium: a click on a header sorts the rows (numbers as numbers), the
filter hides rows, and the page logs no error and requests nothing."""



from biaslab.render.census import write_html
from biaslab.results.census import CensusFinding, CensusModel, CensusResult



def _result() -> CensusResult:
    models = [CensusModel(model_type=name, audited=True, seconds=secs, default_bias_params=100, default_params=1000,
                          findings=[CensusFinding("l.*.k.bias", "redundant", default_params=red, verified=True,
                                                  key_bias=True)])
              for name, secs, red in [("alpha", 10.0, 5), ("beta", 2.0, 50), ("gamma", 100.0, 9)]]
    models.append(CensusModel(model_type="delta", audited=False, reason="timed out after 60 s", seconds=60.0))
    return CensusResult(models=models, available=4, seconds=120.0, transformers_version="x")


def test_census_table_sorts_and_filters(tmp_path, browser):
    page_file = write_html(_result(), tmp_path / "census.html")
    pg = browser.new_page()
    errors, requests = [], []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(page_file.as_uri())

    def first_column():
        return pg.eval_on_selector_all("#types tbody tr", "rs => rs.map(r => r.cells[0].textContent)")

    assert first_column() == ["alpha", "beta", "gamma", "delta"]
    pg.click("#types th:has-text('seconds')")
    assert first_column() == ["beta", "alpha", "delta", "gamma"]  # 2 < 10 < 60 < 100, not "10" < "100" < "2"
    pg.click("#types th:has-text('seconds')")
    assert first_column() == ["gamma", "delta", "alpha", "beta"]
    pg.click("#types th:has-text('redundant share')")  # a blank cell (delta) sorts after every number
    assert first_column() == ["alpha", "gamma", "beta", "delta"]
    pg.fill("#types-q", "timed out")
    shown = pg.eval_on_selector_all("#types tbody tr", "rs => rs.filter(r => r.style.display !== 'none')"
                                                         ".map(r => r.cells[0].textContent)")
    assert shown == ["delta"]
    pg.close()
    assert errors == [] and requests == [page_file.as_uri()]
