"""Static word lists the demo people are built from.

Kept apart from the logic so the generator reads as rules, not as data. Every Chinese character here
survives an opencc simplified→traditional→simplified round trip (tests/test_demodata.py checks it):
the guarantee that a traditional-script record normalises back to its simplified twin depends on it.
Surnames carry their pinyin explicitly because pypinyin reads some surnames with the wrong tone group;
given names and trade names are romanised with pypinyin.
"""
from __future__ import annotations

SURNAMES = [
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"),
    ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"),
    ("马", "Ma"), ("朱", "Zhu"), ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"),
    ("罗", "Luo"), ("高", "Gao"), ("郑", "Zheng"), ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"),
    ("唐", "Tang"), ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"), ("曹", "Cao"), ("彭", "Peng"),
]

GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚婷鹏华飞鑫波宇浩凯健俊帆旭宁龙林欣晨璐琳雪佳倩颖慧玲萍红梅丹阳斌辉建文志国海峰"
)

# Two of these make a trade name (字号), e.g. 华信, 恒通.
TRADE_CHARS = list("华信恒通宏达鑫源金桥瑞丰天成永安中联海纳博远凯盛润泽嘉禾锦程正泰富康同创美隆百川众德明辉利民星辰智诚云帆青松万邦宝聚")

# (Chinese, English) industry words of a company name.
INDUSTRIES = [
    ("贸易", "Trading"), ("科技", "Technology"), ("电子", "Electronics"), ("机械", "Machinery"),
    ("食品", "Foods"), ("物流", "Logistics"), ("化工", "Chemical"), ("纺织", "Textile"),
    ("医药", "Pharmaceutical"), ("建材", "Building Materials"), ("软件", "Software"),
    ("汽车配件", "Auto Parts"), ("包装", "Packaging"), ("家居", "Home Furnishing"),
]

# (Chinese suffix, English suffix)
CN_SUFFIXES = [("有限公司", "Co., Ltd."), ("有限公司", "Co., Ltd."), ("有限公司", "Co., Ltd."),
               ("股份有限公司", "Co., Ltd."), ("股份有限公司", "Corp., Ltd.")]

# City: Chinese, pinyin, postcode prefix, administrative division code (USCC digits 3-8),
# landline area code, district (zh, en), streets [(zh, en with a full street word)].
CN_CITIES = [
    ("上海", "Shanghai", "200", "310115", "21", ("浦东新区", "Pudong New Area"),
     [("张江路", "Zhangjiang Road"), ("世纪大道", "Century Avenue"), ("碧波路", "Bibo Road")]),
    ("北京", "Beijing", "100", "110105", "10", ("朝阳区", "Chaoyang District"),
     [("建国路", "Jianguo Road"), ("酒仙桥路", "Jiuxianqiao Road"), ("东三环中路", "Dongsanhuan Middle Road")]),
    ("深圳", "Shenzhen", "518", "440305", "755", ("南山区", "Nanshan District"),
     [("深南大道", "Shennan Avenue"), ("科技园路", "Kejiyuan Road"), ("高新南一道", "Gaoxin South 1st Road")]),
    ("广州", "Guangzhou", "510", "440106", "20", ("天河区", "Tianhe District"),
     [("天河路", "Tianhe Road"), ("体育西路", "Tiyu West Road"), ("中山大道", "Zhongshan Avenue")]),
    ("杭州", "Hangzhou", "310", "330106", "571", ("西湖区", "Xihu District"),
     [("文三路", "Wensan Road"), ("天目山路", "Tianmushan Road"), ("学院路", "Xueyuan Road")]),
    ("苏州", "Suzhou", "215", "320505", "512", ("虎丘区", "Huqiu District"),
     [("金山路", "Jinshan Road"), ("狮山路", "Shishan Road")]),
    ("南京", "Nanjing", "210", "320106", "25", ("鼓楼区", "Gulou District"),
     [("中山北路", "Zhongshan North Road"), ("汉中路", "Hanzhong Road")]),
    ("成都", "Chengdu", "610", "510107", "28", ("武侯区", "Wuhou District"),
     [("人民南路", "Renmin South Road"), ("天府大道", "Tianfu Avenue")]),
]
# Cities weighted like the brief: the big five dominate.
CN_CITY_WEIGHTS = [24, 20, 16, 14, 12, 6, 5, 3]

# Western markets: country code, ERPNext country name, companies' name parts, persons, addresses.
WESTERN = {
    "DE": {
        "weight": 45, "country": "Germany", "email_tld": "de", "phone_cc": "49",
        "company_heads": ["Müller", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
                          "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann"],
        "company_tails": ["Maschinenbau", "Logistik", "Elektrotechnik", "Handel", "Feinmechanik",
                          "Kunststofftechnik", "Antriebstechnik"],
        "legal": ["GmbH"],
        "first": ["Anna", "Lukas", "Sophie", "Jonas", "Laura", "Felix", "Julia", "Maximilian", "Lena", "Paul"],
        "last": ["Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Koch", "Richter",
                 "Wagner", "Bauer"],
        "cities": [("Berlin", "101", "30"), ("München", "803", "89"), ("Hamburg", "200", "40"),
                   ("Stuttgart", "701", "711"), ("Frankfurt am Main", "603", "69")],
        "streets": ["Hauptstraße", "Bahnhofstraße", "Industriestraße", "Gartenstraße", "Schillerstraße"],
    },
    "US": {
        "weight": 35, "country": "United States", "email_tld": "com", "phone_cc": "1",
        "company_heads": ["Brightwater", "Summit", "Pioneer", "Redwood", "Lakeside", "Ironclad",
                          "Bluefield", "Northstar", "Granite", "Silverline"],
        "company_tails": ["Supply", "Industries", "Components", "Trading", "Technologies", "Logistics"],
        "legal": ["Inc."],
        "first": ["John", "Emily", "Michael", "Sarah", "David", "Jessica", "Robert", "Ashley", "Daniel", "Megan"],
        "last": ["Smith", "Johnson", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Moore",
                 "Jackson", "Harris"],
        "cities": [("San Francisco", "941", "415"), ("Chicago", "606", "312"), ("New York", "100", "212"),
                   ("Seattle", "981", "206"), ("Austin", "787", "512")],
        "streets": ["Market Street", "Main Street", "Oak Avenue", "Pine Street", "Lake Road"],
    },
    "GB": {
        "weight": 20, "country": "United Kingdom", "email_tld": "co.uk", "phone_cc": "44",
        "company_heads": ["Harrington", "Ashford", "Whitmore", "Kingsley", "Fairfax", "Bramley",
                          "Calder", "Thornbury"],
        "company_tails": ["Components", "Engineering", "Trading", "Supplies", "Instruments"],
        "legal": ["Ltd"],
        "first": ["Oliver", "Amelia", "Harry", "Isla", "George", "Emily", "Jack", "Grace", "Thomas", "Chloe"],
        "last": ["Clarke", "Wright", "Walker", "Hughes", "Evans", "Thompson", "Roberts", "Hall",
                 "Green", "Lewis"],
        "cities": [("London", "EC1A", "20"), ("Manchester", "M1", "161"), ("Birmingham", "B1", "121"),
                   ("Leeds", "LS1", "113")],
        "streets": ["High Street", "Station Road", "Church Lane", "Victoria Road", "Park Avenue"],
    },
}

# Street word → abbreviation (applied to one record of a customer, not to others).
STREET_ABBREVIATIONS = [("Road", "Rd."), ("Street", "St."), ("Avenue", "Ave."), ("Lane", "Ln."),
                        ("straße", "str.")]

CN_MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                      "152", "155", "156", "157", "158", "159", "176", "177", "180", "181", "186",
                      "187", "188", "189", "198", "199"]

PERSON_EMAIL_DOMAINS_CN = ["example.cn", "example.com.cn", "mail.example.cn", "example.net"]
COMPANY_MAILBOXES = ["info", "sales", "service", "contact", "finance", "office"]

# Ticket subjects: (Chinese, English, category). Category drives ERPNext issue_type.
TICKET_SUBJECTS = [
    ("发货延迟", "Delivery delayed", "complaint"),
    ("产品质量问题", "Product quality problem", "complaint"),
    ("收到的货物破损", "Goods arrived damaged", "complaint"),
    ("发票抬头错误", "Wrong name on invoice", "complaint"),
    ("退货申请", "Return request", "complaint"),
    ("询问报价", "Request for quotation", "question"),
    ("付款条件咨询", "Question about payment terms", "question"),
    ("如何修改收货地址", "How to change the delivery address", "question"),
    ("产品规格咨询", "Question about product specification", "question"),
    ("客户门户无法登录", "Cannot log in to the customer portal", "bug"),
    ("电子发票下载失败", "E-invoice download fails", "bug"),
]

# Contact persons' job titles at company customers: (Chinese, English).
JOB_TITLES = [
    ("采购经理", "Purchasing Manager"), ("财务总监", "Finance Director"), ("总经理", "General Manager"),
    ("采购专员", "Buyer"), ("会计", "Accountant"), ("物流主管", "Logistics Supervisor"),
    ("技术总监", "Technical Director"), ("行政助理", "Office Assistant"),
]
