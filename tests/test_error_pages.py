import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/gates/-1/x/", "/api/no-such-thing/", "/hooks/a/b/c/d/"])
def test_it_answers_json_not_found_to_programs(client, alice, path):
    client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_it_answers_an_html_page_not_found_to_people(client, alice):
    client.force_login(alice)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
