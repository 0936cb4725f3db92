"""Verdicts on single lines of a web page: navigation, share and app prompts, disclaimers, credits, spam.

Each rule keys on a signal of its kind of junk (a navigation word, a share prompt, list separators
between keywords, a contact handle next to a promotion); a missing full stop alone is never one:
headlines, Markdown headings and unfinished last sentences are story text.
"""

from __future__ import annotations

import re
from collections import Counter

from pipeline.text import LATIN_WORD_RE, count_han, has_sentence_end

_NAVIGATION = re.compile(
    r"^(?:skip to (?:main )?content|facebook|twitter|feature image|menu|search|home|login|sign in|"
    r"subscribe|博客文章|首页|首頁|返回首页|返回首頁|返回顶部|返回頂部|上一篇|下一篇|上一頁|下一頁|"
    r"上一页|下一页|打印|列印|字号|字號|[大中小]字?)"
    r"(?:\s*(?:skip to content|facebook|twitter|feature image|whatsapp|telegram|email))*$",
    re.IGNORECASE,
)
# Words of a site's menu bar; a line made of short items, most of them these, is navigation.
_MENU_WORDS = frozenset(
    """首頁 首页 主頁 主页 新聞 新闻 即時 即时 要聞 要闻 國際 国际 兩岸 两岸 港澳 財經 财经 娛樂 娱乐 體育 体育
    科技 生活 評論 评论 觀點 观点 影音 視頻 视频 圖片 图片 專題 专题 社會 社会 地方 房產 房产 汽車 汽车 健康
    登入 登錄 登录 登出 註冊 注册 會員 会员 搜尋 搜索 搜寻 訂閱 订阅 選單 菜单 目錄 目录 更多 下載app 下载app app
    menu home search login logout register subscribe news world business sport sports tech opinion video
    account newsletter newsletters""".lower().split()
)
_MENU_SEPARATORS = re.compile(r"\s*[|｜·•]\s*|\s+")
_MIN_MENU_ITEMS = 3
_MAX_MENU_ITEM = 8
_BREADCRUMB = re.compile(r"^[^\s>›»]{1,12}(?:\s*[>›»]\s*[^\s>›»]{1,12}){1,6}$")
_SHARE = re.compile(
    r"分享到|分享至|分享：|分享:|一键分享|一鍵分享|下[载載].{0,8}(?:app|客户端|客戶端)|"
    r"打[开開].{0,6}(?:app|客户端|客戶端)|(?:app|客户端|客戶端)[内內]?(?:阅读|閱讀|查看|打开|打開)|"
    r"扫码|掃碼|扫描二维码|掃描二維碼|长按识别|長按識別|点击关注|點擊關注|关注我们|關注我們|"
    r"^share (?:this|on)|download (?:the|our) app|open in app|get the app|read (?:it |more )?in (?:the )?app|"
    r"^follow us"
)
_DISCLAIMER = re.compile(
    r"特别声明|特別聲明|免责声明|免責聲明|版权所有|版權所有|版权声明|版權聲明|文责自负|文責自負|"
    r"不代表本(?:公司|站|网|網|平台|平臺)立[场場]|未经授权.{0,6}不得转载|未經授權.{0,6}不得轉載|"
    r"(?:独家|獨家)稿件|仅提供信息存储服务|僅提供信息存儲服務|^notice: the content above|"
    r"^copyright\b|all rights reserved|^©"
)
_CREDIT = re.compile(r"^(?:来源|來源|稿源|责任编辑|責任編輯|编辑|編輯|校对|校對|source|editor)\s*[:：]", re.IGNORECASE)
BYLINE_PREFIX = re.compile(r"^【(?:文|记者|記者|编译|編譯|撰文)[/／:：\s][^】]{1,30}】\s*")
_CAPTION_CREDIT = re.compile(
    r"(?:\s|^)(?:ic ?photo|視覺中國|视觉中国|社交媒體|社交媒体|getty images|afp|reuters|资料图|資料圖|"
    r"网络图片|網絡圖片|图源[^\s]*|圖源[^\s]*|新华社|新華社)\s*$"
)
# A Markdown heading is a title, however short.
HEADING = re.compile(r"^#{1,6}\s+\S")

# --- spam -------------------------------------------------------------------------------------

# Keyword stuffing: many short items between list separators (whitespace alone is not one: that is
# how headlines are spaced), or a labelled keyword or tag line, or a run of hashtags.
_LIST_SEPARATORS = re.compile(r"\s*[,，、|｜/／;；]\s*")
_KEYWORD_LABEL = re.compile(
    r"^(?:关键词|關鍵詞|关键字|關鍵字|标签|標籤|热词|熱詞|tags?|keywords?)\s*[:：]\s*", re.IGNORECASE
)
_HASHTAGS = re.compile(r"^(?:#[^\s#]{1,20}#?\s*){3,}$")
_MIN_KEYWORDS = 5
_MAX_KEYWORD = 10
_MAX_MEAN_KEYWORD = 6
# Clauses of a sentence are items too (專家表示，未來將更好，…); they carry function words.
_FUNCTION_CHARS = frozenset("的了是在將将和與与對对也都就而但這这那其被把從从為为於于着著得地之所以")
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an of to in on for and or is are was were be by with from at as that".split()
)
# Contact and link spam: a handle, a phone number or a link next to a promotion. Words that news
# also uses (點擊, 聯繫, 合作) only count on a line that is not a finished sentence.
_HANDLE = re.compile(
    r"(?:微信号?|微信號|vx|v信|威信|qq群?|q群|wechat|telegram|whatsapp|line ?id)\s*[:：]?\s*[\w@.+-]{3,}|"
    r"(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)\d{3,4}-\d{7,8}(?!\d)"
)
# Something every handle or link holds: long digits, ://, www, a dot before a letter, a messenger.
_HANDLE_HINT = re.compile(r"\d{7}|://|www|\.[a-z]|微信|威信|[vq]信|qq|vx|q群|wechat|telegram|whatsapp|line")
_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|cn|net|org|tw|hk|io|cc|top|xyz|vip)\b")
_STRONG_PROMOTION = re.compile(
    r"加我|加微信|私聊|私信我|免费领|免費領|领取福利|領取福利|红包|紅包|兼职|兼職|赚钱|賺錢|日结|日結|代购|代購|"
    r"接单|接單|秒杀|秒殺|进群|進群|加群|招代理|返利|限时优惠|限時優惠|优惠券|優惠券|折扣码|折扣碼|"
    r"\b(?:promo code|giveaway|earn money)\b"
)
_WEAK_PROMOTION = re.compile(
    r"点击|點擊|关注|關注|联系|聯繫|聯絡|咨询|諮詢|订阅|訂閱|下载|下載|详情|詳情|立即|马上|馬上|报名|報名|购买|購買|"
    r"合作|客服|优惠|優惠|免费|免費|领取|領取|福利|限时|限時|折扣|"
    r"\b(?:click|subscribe|contact|join|buy|offer|deal|free|discount)\b"
)
# Menu bars, contact spam and repeated promotions are short lines; longer ones are not looked at.
_MAX_SHORT_LINE = 120
_MAX_REPEATED_PROMOTION = 80
_PROMO_ITEMS = re.compile(r"[\s,，、|｜/!！~～。.…]+")
_MIN_PROMO_REPEATS = 3


def squeeze(line: str) -> str:
    """The line without spaces, for matching spaced-out chrome (你 或 有 興 趣 的 文 章)."""
    return "".join(line.split())


def is_prose(text: str) -> bool:
    return count_han(text) >= 8 or len(LATIN_WORD_RE.findall(text)) >= 6


def is_disclaimer(text: str) -> bool:
    return _DISCLAIMER.search(text.lower()) is not None


def is_menu(text: str) -> bool:
    """A menu bar: short items, most of them menu words (首頁 新聞 財經 登入, Menu Home Search)."""
    if len(text) > _MAX_SHORT_LINE:
        return False
    lowered = text.lower()
    if any(sep in text for sep in "|｜·•"):
        items = [item for item in _MENU_SEPARATORS.split(lowered) if item]
    else:
        items = lowered.split()
    if len(items) < _MIN_MENU_ITEMS or any(len(item) > _MAX_MENU_ITEM for item in items):
        return False
    menu = sum(1 for item in items if item in _MENU_WORDS)
    return menu >= 2 and menu * 2 >= len(items)


def _is_clause(item: str) -> bool:
    words = item.lower().split()
    return any(c in _FUNCTION_CHARS for c in item) or any(w in _ENGLISH_FUNCTION_WORDS for w in words)


def is_keyword_list(text: str) -> bool:
    """Keyword stuffing: AI,人工智能,DeepSeek,大模型,ChatGPT · 標籤：AI 芯片 · #AI #芯片 #DeepSeek."""
    if _HASHTAGS.match(text):
        return True
    label = _KEYWORD_LABEL.match(text)
    if label:
        items = [item for item in re.split(r"[\s,，、|｜/／;；]+", text[label.end() :]) if item]
        return bool(items) and all(len(item) <= 2 * _MAX_KEYWORD for item in items)
    if has_sentence_end(text):
        return False
    items = [item for item in _LIST_SEPARATORS.split(text.strip()) if item]
    if len(items) < _MIN_KEYWORDS or any(len(item) > _MAX_KEYWORD for item in items):
        return False
    if sum(len(item) for item in items) > _MAX_MEAN_KEYWORD * len(items):
        return False
    return sum(1 for item in items if _is_clause(item)) * 5 <= len(items)


def _promotes(lowered: str) -> bool:
    if _STRONG_PROMOTION.search(lowered):
        return True
    return _WEAK_PROMOTION.search(lowered) is not None and not has_sentence_end(lowered)


def _is_contact_spam(lowered: str) -> bool:
    if not _HANDLE_HINT.search(lowered):
        return False
    return bool(_HANDLE.search(lowered) or _LINK.search(lowered)) and _promotes(lowered)


def _is_repeated_promotion(text: str) -> bool:
    """The same promotion said again and again: 限時優惠！限時優惠！限時優惠！"""
    if len(text) > _MAX_REPEATED_PROMOTION:
        return False
    items = [item for item in _PROMO_ITEMS.split(text) if item]
    if len(items) < _MIN_PROMO_REPEATS:
        match = re.fullmatch(r"(.{2,20}?)\1{2,}", squeeze(text))
        return match is not None and _promotes(match.group(1).lower())
    phrase, times = Counter(items).most_common(1)[0]
    return times >= _MIN_PROMO_REPEATS and times * 5 >= len(items) * 3 and _promotes(phrase.lower())


def is_spam(text: str) -> bool:
    if is_keyword_list(text):
        return True
    return len(text) <= _MAX_SHORT_LINE and (_is_contact_spam(text.lower()) or _is_repeated_promotion(text))


# --- the verdict ------------------------------------------------------------------------------

# Before the first real line of prose, lines this short are page debris ("11", "to C").
_MIN_LINE_CHARS = 6


def verdict(text: str, seen_prose: bool) -> str | None:
    """The junk kind of one line, or None to keep it."""
    squeezed = squeeze(text)
    lowered = text.lower()  # the patterns are lower case: faster than matching ignoring case
    if _NAVIGATION.match(text) or _NAVIGATION.match(squeezed) or is_menu(text):
        return "navigation"
    if _BREADCRUMB.match(text) and not has_sentence_end(text):
        return "breadcrumb"
    if len(squeezed) < 60 and _SHARE.search(lowered):
        return "share"
    if _DISCLAIMER.search(lowered):
        return "disclaimer"
    if len(squeezed) < 40 and _CREDIT.match(text):
        return "credit"
    if len(squeezed) < 120 and _CAPTION_CREDIT.search(lowered):
        return "caption"
    if is_spam(text):
        return "spam"
    if HEADING.match(text):
        return None
    if re.fullmatch(r"[\d\W_]+", squeezed) or (not seen_prose and len(squeezed) < _MIN_LINE_CHARS):
        return "fragment"
    return None
