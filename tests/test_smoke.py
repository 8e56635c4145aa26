def test_pages_render(web):
    assert web.client.get("/").status_code == 302
    status, html = web.page("/login")
    assert status == 200 and 'dir="rtl"' in html
    r = web.login("ngo")
    assert r.status_code == 302 and r.location.endswith("/portal/")
    status, html = web.page("/portal/")
    assert status == 200, html
