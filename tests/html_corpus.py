"""Bodies for the one HTML path (tests/test_html_path.py).

``HOSTILE``: markup the sanitiser removes. Each must come out safe through
``gongkai.html.render_body`` and be reported by ``body_markup_problems`` (the issue
forbids a silent strip).

``INERT``: bodies that look hostile but that Markdown already shows as text (escaped
entities, code spans, a backslash): safe, nothing removed, nothing reported.

``BENIGN``: ordinary government content that must pass unchanged and unreported.

Every body may name the attachments in ``ATTACHMENTS``.
"""

from __future__ import annotations

ATTACHMENTS = ("名单.xlsx", "现场照片.jpg")

_TABLE = "| 序号 | 户主 | 备注 |\n|---|---|---|\n| 1 | 张三 | {cell} |\n"

HOSTILE: dict[str, str] = {
    # Scripts, whatever the spelling.
    "script": "<script>alert(1)</script>",
    "script-uppercase": "<SCRIPT>alert(1)</SCRIPT>",
    "script-mixed-case-src": "<ScRiPt src=//evil.example/x.js></ScRiPt>",
    "script-split-by-script": "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "script-inline-in-paragraph": "现公示如下<script>alert(1)</script>请周知。",
    "script-in-markdown-table-cell": _TABLE.format(cell="<script>alert(1)</script>"),
    "script-after-heading": "# 公示\n\n<script\n>alert(1)</script\n>",
    "xmp-with-script": "<xmp><script>alert(1)</script></xmp>",
    "template-with-script": "<template><script>alert(1)</script></template>",
    "noscript-attribute-breakout": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "title-breakout": "<title><img src=x onerror=alert(1)></title>",
    # Event handlers.
    "img-onerror": "<img src=x onerror=alert(1)>",
    "img-onerror-on-an-attachment": '<img src="现场照片.jpg" onerror="alert(1)">',
    "a-onclick": '<a href="https://www.jintang.gov.cn" onclick="alert(1)">网站</a>',
    "svg-onload": "<svg onload=alert(1)>",
    "body-onload": "<body onload=alert(1)>正文</body>",
    "p-onmouseover-uppercase-unquoted": "<p OnMouseOver=alert(1)>移上来</p>",
    "td-onmouseover": '<table><tr><td onmouseover="alert(1)">1</td></tr></table>',
    "details-ontoggle": "<details open ontoggle=alert(1)>详情</details>",
    "input-onfocus-autofocus": "<input autofocus onfocus=alert(1)>",
    # Links that run code, in Markdown.
    "md-link-javascript": "[点击查看](javascript:alert(1))",
    "md-link-javascript-mixed-case": "[点击查看](JaVaScRiPt:alert(1))",
    "md-link-javascript-decimal-entity": "[点击查看](&#106;avascript:alert(1))",
    "md-link-javascript-tab-entity": "[点击查看](java&#x09;script:alert(1))",
    "md-link-vbscript": "[点击查看](vbscript:msgbox(1))",
    "md-link-data-html": "[点击查看](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "md-link-protocol-relative": "[点击查看](//evil.example/)",
    "md-link-fullwidth-javascript": "[点击查看](ｊａｖａｓｃｒｉｐｔ:alert(1))",
    "md-link-in-table-cell": _TABLE.format(cell="[详情](javascript:alert(1))"),
    "autolink-javascript": "<javascript:alert(1)>",
    "autolink-data": "<data:text/html;base64,PHNjcmlwdD4=>",
    "md-image-foreign": "![照片](https://evil.example/track.png)",
    "md-image-javascript": "![照片](javascript:alert(1))",
    "md-image-relative-not-attachment": "![照片](../secret/现场照片.jpg)",
    # Links that run code, in raw HTML.
    "a-href-javascript": '<a href="javascript:alert(1)">点击</a>',
    "a-href-vbscript-mixed-case": '<a href="VbScRiPt:msgbox(1)">点击</a>',
    "a-href-data": '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">点击</a>',
    "a-href-all-decimal-entities": (
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">点击</a>'
    ),
    "a-href-hex-entities-no-semicolons": (
        '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">点击</a>'
    ),
    "a-href-colon-entity": "<a href=javascript&colon;alert(1)>点击</a>",
    "a-href-tab-entity": '<a href="java&#x09;script:alert(1)">点击</a>',
    "a-href-newline": '<a href="java\nscript:alert(1)">点击</a>',
    "a-href-leading-spaces": '<a href="   javascript:alert(1)">点击</a>',
    "a-href-leading-newline-entity": '<a href="&#10;&#13;javascript:alert(1)">点击</a>',
    "a-href-leading-control-entity": '<a href="&#14;javascript:alert(1)">点击</a>',
    "a-href-backslash-unicode-escape": '<a href="\\u006aavascript:alert(1)">点击</a>',
    "a-href-duplicate-attribute": '<a href="https://www.jintang.gov.cn" href="javascript:alert(1)">点击</a>',
    "img-src-javascript": '<img src="javascript:alert(1)">',
    "img-src-data-svg": '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "img-srcset-foreign": '<img src="现场照片.jpg" srcset="https://evil.example/x.png 2x">',
    # Other documents, plugins and page-level tags.
    "svg-script": "<svg><script>alert(1)</script></svg>",
    "svg-xlink-href": (
        '<svg><a xlink:href="javascript:alert(1)"><text x="0" y="20">点击</text></a></svg>'
    ),
    "math-mglyph-style-mxss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "iframe-srcdoc": '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "object-data": '<object data="javascript:alert(1)"></object>',
    "embed-src": '<embed src="javascript:alert(1)">',
    "style-tag": '<style>body{background:url("javascript:alert(1)")}</style>',
    "link-stylesheet": '<link rel="stylesheet" href="https://evil.example/x.css">',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "form-formaction": '<form><button formaction="javascript:alert(1)">提交</button></form>',
    "base-href": '<base href="https://evil.example/">',
    # Comments and declarations.
    "conditional-comment": "<!--[if IE]><script>alert(1)</script><![endif]-->",
    "comment-bang-close": "<!-- --!><img src=x onerror=alert(1)> -->",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "doctype": "<!DOCTYPE html>\n\n正文",
    "processing-instruction": '<?xml-stylesheet href="https://evil.example/x.xsl"?>',
    # Styling.
    "style-expression": '<p style="width: expression(alert(1))">通知</p>',
    "style-url-javascript-in-table": (
        '<table><tr><td style="background:url(javascript:alert(1))">1</td></tr></table>'
    ),
    "div-style-overlay": '<div style="position:fixed;top:0;left:0">假通知</div>',
    "img-style-on-an-attachment": '<img src="现场照片.jpg" style="width:9999px">',
    # Tables, nested and malformed.
    "nested-table-with-script": (
        "<table><tr><td><table><tr><td><script>alert(1)</script></td></tr></table>"
        "</td></tr></table>"
    ),
    "malformed-table-unclosed-td": "<table><tr><td>1<td><img src=x onerror=alert(1)></table>",
    "raw-img-in-markdown-table": _TABLE.format(cell="<img src=x onerror=alert(1)>"),
    "raw-table-in-markdown-table": _TABLE.format(
        cell="<table><tr><td onclick=alert(1)>x</td></tr></table>"
    ),
    "td-colspan-not-a-number": '<table><tr><td colspan="2 onclick=alert(1)">1</td></tr></table>',
}

INERT: dict[str, str] = {
    "escaped-entities": "&lt;script&gt;alert(1)&lt;/script&gt;",
    "code-span": "示例：`<script>alert(1)</script>`",
    "fenced-code": "```html\n<script>alert(1)</script>\n```",
    "backslash-escaped-tag": "\\<script>alert(1)\\</script>",
    "link-title-quote-breakout": '[网站](https://www.jintang.gov.cn "\\" onmouseover=alert(1) x=\\"")',
    "chinese-tag-name": "<中文 onclick=alert(1)>",
}

BENIGN: dict[str, str] = {
    "dibao-name-list": (
        "经个人申请、入户调查、民主评议，拟将以下家庭纳入城乡居民最低生活保障，"
        "现予公示：\n\n"
        "| 序号 | 户主 | 家庭人口 | 保障金额（元/月） |\n"
        "|:--:|---|--:|--:|\n"
        "| 1 | 张* | 3 | 1,020 |\n"
        "| 2 | 欧阳** | 1 | 480 |\n"
    ),
    "headings-and-lists": (
        "# 申请条件\n\n1. 具有本县户籍；\n2. 家庭人均收入低于当地标准。\n\n"
        "## 申请材料\n\n- 身份证明\n- 收入证明\n\n"
        "3. 第三项从3开始编号\n4. 第四项\n"
    ),
    "contact-links": (
        "监督电话：[028-84930000](tel:028-84930000)；"
        "电子邮箱：[jtmz@jintang.gov.cn](mailto:jtmz@jintang.gov.cn)；"
        "网站：<https://www.jintang.gov.cn>，"
        '[民政局](http://mzj.jintang.gov.cn/index.html "金堂县民政局")。'
    ),
    "document-title-in-brackets": (
        "根据《金堂县城乡居民最低生活保障实施细则》（金府办发〔2018〕18号），制定本通知。"
    ),
    "less-than-in-words": "人均收入小于当地标准的家庭；a < b 且 3<5，<中文> 不是标签。",
    "ampersands-and-entities": "AT&T、R&D 中心，&copy; 金堂县人民政府&nbsp;2026",
    "emphasis-quote-code-rule": (
        "**重要**：请*按时*提交。\n\n> 公示期内如有异议，请实名反映。\n\n---\n\n"
        "```text\n编号：JT-2026-001\n```\n\n`代码`"
    ),
    "line-break-in-table-cell": (
        "| 户主 | 地址 |\n|---|---|\n| 张三 | 五凤镇<br>金桂村3组 |\n| 李四 | 五凤镇<br/>金桂村5组 |\n"
    ),
    "raw-table-with-merged-cells": (
        '<table>\n<tr><th colspan="2" align="center">补助对象</th></tr>\n'
        '<tr><td rowspan="2">五凤镇</td><td>张三</td></tr>\n<tr><td>李四</td></tr>\n'
        "</table>"
    ),
    "attachment-link-and-image": (
        "详见附件[名单](名单.xlsx)。\n\n![现场照片](现场照片.jpg)\n\n"
        '<img src="现场照片.jpg" alt="现场照片">'
    ),
    "emphasis-raw-html": "<strong>特别提醒</strong>：<em>逾期</em>不予受理。<br>",
}
