"""HTML pages -> main text and metadata: charsets, Chinese page layouts, boilerplate, the fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest.html import codec_for, decode_html, extract_page, page_meta
from pipeline.ingest.html_meta import clean_author, iso_date

PAGES = Path(__file__).resolve().parent / "pages"


def page(name: str, **kwargs: str) -> object:
    return extract_page(PAGES.joinpath(name).read_bytes(), source=name, **kwargs)


# --- charsets ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "codec"),
    [("GB2312", "gb18030"), ("gbk", "gb18030"), ("Big5", "big5hkscs"), ("ISO-8859-1", "cp1252"), ("utf8", "utf-8")],
)
def test_charset_labels_map_to_the_codecs_pages_really_need(label: str, codec: str) -> None:
    assert codec_for(label) == codec


def test_unknown_charset_label_is_none() -> None:
    assert codec_for("x-no-such-charset") is None


def test_gbk_page_without_any_declaration_is_detected() -> None:
    decoded = decode_html(PAGES.joinpath("portal_gbk.html").read_bytes(), None, "portal")
    assert decoded.evidence == "detected"
    assert "国家统计局" in decoded.text and "朱镕基" in decoded.text  # 镕 is GBK, not GB2312


def test_meta_charset_decides_when_http_says_nothing() -> None:
    decoded = decode_html(PAGES.joinpath("hk_big5.html").read_bytes(), None, "hk")
    assert (decoded.encoding, decoded.evidence) == ("big5hkscs", "meta")
    assert "消費券" in decoded.text


def test_http_charset_beats_a_wrong_meta() -> None:
    body = '<html><head><meta charset="big5"></head><body><p>国家统计局发布数据</p></body></html>'.encode("gbk")
    decoded = decode_html(body, "gb2312", "x")
    assert (decoded.evidence, "国家统计局" in decoded.text) == ("http", True)


def test_latin1_header_is_weak_against_the_pages_own_meta() -> None:
    body = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"></head><body>新闻</body>'
    decoded = decode_html(body.encode("gbk"), "ISO-8859-1", "x")
    assert decoded.evidence == "meta" and "新闻" in decoded.text


def test_declared_charset_that_does_not_fit_falls_back_to_detection() -> None:
    body = '<html><head><meta charset="utf-8"></head><body><p>香港特別行政區政府今日公布</p></body></html>'
    decoded = decode_html(body.encode("big5"), None, "x")
    assert decoded.evidence == "detected" and "香港特別行政區" in decoded.text


def test_binary_payload_is_an_input_error() -> None:
    with pytest.raises(InputError, match="binary"):
        decode_html(b"\x89PNG\r\n\x1a\n\x00\x00\x00", None, "image.png")


# --- three (four) Chinese layouts ----------------------------------------------------------------------


def test_portal_article_in_gbk_keeps_the_story_and_drops_the_portal() -> None:
    result = page("portal_gbk.html", url="https://finance.huaxia.example/c/2024-05-15/doc-inaxyz1234.shtml")
    lines = result.text.split("\n")
    assert lines[0] == "国家统计局：4月份国民经济持续恢复 工业生产加快"
    assert any(line.startswith("新华社北京5月15日电") for line in lines)
    assert "数据显示：" in lines  # a short paragraph survives
    assert any("朱镕基" in line for line in lines)
    for junk in ("热点排行", "首页", "相关新闻", "央行：4月末", "网友评论", "小工厂订单", "京ICP证", "分享到"):
        assert junk not in result.text, junk
    assert not any(line.startswith("　") for line in lines)  # full-width indents stripped
    assert result.meta.published == "2024-05-15"
    assert result.meta.author == "王晓明"
    assert result.meta.site == "华夏网"
    assert result.meta.canonical_url == "https://finance.huaxia.example/c/2024-05-15/doc-inaxyz1234.shtml"


def test_hong_kong_page_in_big5_with_json_ld() -> None:
    result = page("hk_big5.html")
    assert result.text.split("\n")[0] == "港府公布新一輪消費券計劃 市民下月起可登記"
    assert "「穩住就業、帶動消費」" in result.text
    assert "政府發言人補充" in result.text
    for junk in ("延伸閱讀", "財政預算案重點", "最多人看", "港鐵新車站", "版權所有", "兩岸"):
        assert junk not in result.text, junk
    meta = result.meta
    assert (meta.published, meta.author, meta.site) == ("2024-03-08T14:20:00+08:00", "陳大文", "香江日報")
    assert meta.canonical_url == "https://news.hkdaily.example/article/20240308/hk-voucher-plan"  # utm dropped


def test_wechat_article_section_soup_hidden_body_and_comments() -> None:
    result = page("wechat_utf8.html", charset="utf-8")
    lines = result.text.split("\n")
    # text sitting directly in <section><span>, and spans of one sentence kept on one line
    assert (
        "那时候他刚从深圳回来，手里有十几万元积蓄，店面每月租金三千五百元。开业第一个月，每天能卖出两百多杯。" in lines
    )
    assert "2021年夏天，阿杰在县城老街上开了第一家奶茶店。" in lines
    assert "今年春节，小店单日营业额第一次突破一万元。" in lines
    for junk in ("精选留言", "晴天的猫", "一条街七八家奶茶店", "阅读原文", "在看"):
        assert junk not in result.text, junk
    meta = result.meta
    assert meta.title == "深度｜一家县城奶茶店的三年"
    assert meta.site == "县城观察"  # the account, not "微信公众平台"
    assert meta.author == "林小雨"
    assert meta.published == "2024-05-15T09:00:00+00:00"  # var ct, not "2021年夏天" in the text


def test_old_table_layout_with_br_paragraphs() -> None:
    result = page("tw_table_utf8.html")
    lines = result.text.split("\n")
    assert len(lines) == 5  # headline + four <br><br>-separated paragraphs, each on its own line
    assert lines[1].startswith("台灣電力公司今天表示") and lines[4].startswith("經濟部官員則說")
    for junk in ("會員登入", "即時新聞", "高鐵明起", "延伸閱讀", "客服信箱"):
        assert junk not in result.text, junk
    assert result.meta.published == "2024-06-02T09:15:00+08:00"
    assert result.meta.canonical_url == "https://www.formosa-news.example/news/aid/7788"


# --- fallbacks and odd pages ---------------------------------------------------------------------------


def test_page_trafilatura_cannot_read_still_gives_its_text() -> None:
    result = extract_page("<html><body>快讯：台风登陆</body></html>".encode(), source="tiny")
    assert result.text == "快讯：台风登陆"


def test_page_without_text_is_an_input_error_naming_the_source() -> None:
    with pytest.raises(InputError, match="empty.html"):
        extract_page(b"<html><head><title></title></head><body><script>x=1</script></body></html>", source="empty.html")


def test_headline_comes_first_once() -> None:
    body = "<html><head><title>标题甲_某网</title></head><body><h1>标题甲</h1><p>正文第一段，内容足够长。</p></body>"
    text = extract_page(body.encode(), source="x").text
    assert text.split("\n") == ["标题甲", "正文第一段，内容足够长。"]


def test_xml_declaration_and_nul_bytes_do_not_break_parsing() -> None:
    body = '<?xml version="1.0" encoding="utf-8"?><html><body><p>内容\x00正常</p></body></html>'
    assert "内容正常" in extract_page(body.encode(), charset="utf-8", source="x").text


def test_page_meta_alone_matches_extract_page() -> None:
    payload = PAGES.joinpath("hk_big5.html").read_bytes()
    assert page_meta(payload, source="hk") == extract_page(payload, source="hk").meta


def test_canonical_pointing_at_the_home_page_is_ignored() -> None:
    body = b'<html><head><link rel="canonical" href="https://x.example/"></head><body><p>a</p></body></html>'
    meta = page_meta(body, url="https://x.example/news/1.html?utm_source=x", source="x")
    assert meta.canonical_url == "https://x.example/news/1.html"


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2024年05月15日 10:32", "2024-05-15T10:32"),
        ("2024/06/02 09:15:07", "2024-06-02T09:15:07"),
        ("2024-3-8", "2024-03-08"),
        ("2024-03-08T14:20:00+08:00", "2024-03-08T14:20:00+08:00"),
        ("1715763600", "2024-05-15T09:00:00+00:00"),
        ("2021年夏天", None),
        ("1887-01-01", None),
    ],
)
def test_dates_pages_write(raw: str, iso: str | None) -> None:
    assert iso_date(raw) == iso


@pytest.mark.parametrize(
    ("raw", "name"), [("记者 王晓明", "王晓明"), ("記者：陳大文", "陳大文"), ("https://x.example/me", None), ("", None)]
)
def test_author_prefixes_are_dropped(raw: str, name: str | None) -> None:
    assert clean_author(raw) == name


def test_article_box_named_like_boilerplate_is_kept_when_it_holds_the_story() -> None:
    story = "".join(f"<p>第{n}段：这是正文内容，讲述事件的经过和各方的反应。</p>" for n in range(6))
    body = f'<html><body><div class="nav"><a href="/">首页</a></div><div class="side-main">{story}</div></body></html>'
    text = extract_page(body.encode(), source="x").text
    assert text.count("这是正文内容") == 6


def test_comment_thread_longer_than_the_story_is_still_dropped() -> None:
    story = "".join(f"<p>第{n}段：这是正文内容，讲述事件的经过和各方的反应。</p>" for n in range(3))
    thread = "".join(
        f"<div class='item'><p>网友{n}：我觉得这件事情说明了很多问题，值得大家认真思考。</p></div>" for n in range(8)
    )
    body = f'<html><body><div class="main"><div class="text">{story}</div><div id="comment_list">{thread}</div></div>'
    text = extract_page(f"{body}</body></html>".encode(), source="x").text
    assert text.count("这是正文内容") == 3 and "网友" not in text


def test_english_page_reads_too() -> None:
    paragraphs = "".join(f"<p>Paragraph {n} of the report says the council approved the budget.</p>" for n in range(5))
    body = (
        "<html><head><title>Council approves budget | City News</title></head><body>"
        '<nav><a href="/">Home</a> <a href="/sport">Sport</a></nav>'
        f"<article><h1>Council approves budget</h1>{paragraphs}</article>"
        '<section id="comments"><p>Reader one: this comment is long enough to look like a paragraph.</p></section>'
        "</body></html>"
    )
    result = extract_page(body.encode(), source="en")
    lines = result.text.split("\n")
    assert lines[0] == "Council approves budget" and len(lines) == 6
    assert "Reader one" not in result.text and "Sport" not in result.text
    assert result.meta.site == "City News"
