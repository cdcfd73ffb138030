"""The arXiv stand-in driven through ``arxiv.Client``."""

from __future__ import annotations

from collections.abc import Iterator

import arxiv
import pytest
import requests

from tests.standins import ArxivConfig, StandinServer, max_overlap, min_start_interval


@pytest.fixture
def arxiv_client(standins: StandinServer) -> Iterator[arxiv.Client]:
    client = arxiv.Client(page_size=5, delay_seconds=0, num_retries=0)
    client.query_url_format = standins.arxiv_query_url_format
    yield client
    client._session.close()


def test_results_parse_into_arxiv_results(standins: StandinServer, arxiv_client: arxiv.Client) -> None:
    search = arxiv.Search(query='all:"tool use" AND cat:cs.CL', max_results=3)
    results = list(arxiv_client.results(search))
    assert len(results) == 3
    first = results[0]
    assert first.entry_id.startswith("http://arxiv.org/abs/24")
    assert first.entry_id.endswith("v1")
    assert "Tool Use" in first.title
    assert first.authors
    assert first.authors[0].name
    assert first.published.year == 2024
    assert first.updated >= first.published
    assert first.primary_category == "cs.CL"
    assert "cs.CL" in first.categories
    assert first.pdf_url is not None
    assert first.summary
    again = list(arxiv_client.results(search))
    assert [r.entry_id for r in again] == [r.entry_id for r in results]


def test_pagination_stops_at_the_total(standins: StandinServer, arxiv_client: arxiv.Client) -> None:
    standins.configure(arxiv=ArxivConfig(total_results=12))
    results = list(arxiv_client.results(arxiv.Search(query="ti:agents", max_results=None)))
    assert len(results) == 12
    assert len({r.entry_id for r in results}) == 12
    starts = [e["start"] for e in standins.requests("arxiv")]
    assert starts == [0, 5, 10]


def test_id_list_lookup(arxiv_client: arxiv.Client) -> None:
    (paper,) = arxiv_client.results(arxiv.Search(id_list=["2401.01234v2"]))
    assert paper.get_short_id() == "2401.01234v2"


def test_empty_feed_and_http_faults(standins: StandinServer, arxiv_client: arxiv.Client) -> None:
    search = arxiv.Search(query="all:robots", max_results=3)
    standins.configure(arxiv=ArxivConfig(fail_first_n=1, fail_first_fault="empty"))
    assert list(arxiv_client.results(search)) == []  # an empty first page ends the search
    standins.configure(arxiv=ArxivConfig(fail_first_n=1, fail_first_fault="503"))
    with pytest.raises(arxiv.HTTPError) as err:
        list(arxiv_client.results(search))
    assert err.value.status == 503
    standins.configure(arxiv=ArxivConfig(fail_first_n=1, fail_first_fault="truncated"))
    with pytest.raises(requests.RequestException):
        list(arxiv_client.results(search))
    assert [e["fault"] for e in standins.requests("arxiv")] == ["empty", "503", "truncated"]


def test_journal_records_timing_of_serial_requests(standins: StandinServer) -> None:
    standins.configure(arxiv=ArxivConfig(latency=0.05, total_results=6))
    client = arxiv.Client(page_size=2, delay_seconds=0.1)
    client.query_url_format = standins.arxiv_query_url_format
    try:
        assert len(list(client.results(arxiv.Search(query="all:llm", max_results=None)))) == 6
    finally:
        client._session.close()
    entries = standins.requests("arxiv")
    assert len(entries) == 3
    assert all(e["finished_at"] - e["started_at"] >= 0.05 for e in entries)
    assert max_overlap(entries) == 1
    interval = min_start_interval(entries)
    assert interval is not None
    assert interval >= 0.1
