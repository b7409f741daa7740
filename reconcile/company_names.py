"""Company names as words that meet across scripts.

A Chinese company name follows a fixed structure (企业名称登记管理规定): region + trade name (字号) + industry
+ legal form, and its registered English name usually keeps that order with the region and the trade
name in pinyin and the industry translated: 深圳凯辰纺织有限公司 is "Shenzhen Kaichen Textile Co., Ltd.".
`cn_company_words` splits a Chinese name that way and translates the industry, so that both spellings
give the same words. Latin names pass through `english_industry_word`, which brings the usual variants
of an industry word to one form ("Technologies", "Tech" → "technology").
"""
from __future__ import annotations

from functools import lru_cache

# Industry terms (行业) and the English rendering Chinese companies register most often. Longest first
# wins, so 电子科技 is read whole before 科技.
INDUSTRY_EN = {
    "贸易": "trading", "商贸": "trading", "国际贸易": "international trading", "进出口": "import export",
    "科技": "technology", "技术": "technology", "信息技术": "information technology", "网络科技": "network technology",
    "电子科技": "electronic technology", "生物科技": "biotechnology", "智能科技": "intelligent technology",
    "电子": "electronics", "电子商务": "ecommerce", "电器": "electrical appliances", "电气": "electric",
    "机械": "machinery", "机电": "electromechanical", "设备": "equipment", "仪器": "instruments",
    "精密": "precision", "模具": "mould", "五金": "hardware", "金属": "metal", "钢铁": "steel",
    "塑料": "plastics", "材料": "materials", "新材料": "new materials", "化工": "chemical",
    "食品": "foods", "餐饮": "catering", "农业": "agriculture", "酒店": "hotel",
    "物流": "logistics", "供应链": "supply chain", "运输": "transportation", "航运": "shipping",
    "纺织": "textile", "服装": "garment", "服饰": "apparel", "家居": "home furnishing", "家具": "furniture",
    "玩具": "toys", "陶瓷": "ceramics", "照明": "lighting", "印刷": "printing", "包装": "packaging",
    "医药": "pharmaceutical", "制药": "pharmaceutical", "医疗器械": "medical devices", "化妆品": "cosmetics",
    "建材": "building materials", "建筑": "construction", "建设": "construction", "工程": "engineering",
    "房地产": "real estate", "置业": "real estate", "投资": "investment", "咨询": "consulting",
    "管理咨询": "management consulting", "传媒": "media", "文化传媒": "culture media", "广告": "advertising",
    "软件": "software", "通信": "communication", "光电": "optoelectronics", "半导体": "semiconductor",
    "能源": "energy", "新能源": "new energy", "环保": "environmental protection",
    "汽车": "automotive", "汽车配件": "auto parts", "汽车零部件": "auto parts", "实业": "industrial",
    "工业": "industrial",
}
_BY_LENGTH = sorted(INDUSTRY_EN, key=len, reverse=True)

# The usual English variants of those renderings, in the form INDUSTRY_EN uses.
ENGLISH_VARIANTS = {
    "trade": "trading", "technologies": "technology", "tech": "technology", "electronic": "electronics",
    "machine": "machinery", "machines": "machinery", "food": "foods", "chemicals": "chemical",
    "textiles": "textile", "pharmaceuticals": "pharmaceutical", "pharma": "pharmaceutical",
    "garments": "garment", "industries": "industrial", "industry": "industrial", "instrument": "instruments",
    "material": "materials", "logistic": "logistics",
}

# Provincial-level regions and cities of three or four characters (most region prefixes are two).
_THREE_CHARACTER_REGIONS = ("黑龙江", "内蒙古", "石家庄", "哈尔滨", "乌鲁木齐", "呼和浩特", "齐齐哈尔")


def english_industry_word(word: str) -> str:
    return ENGLISH_VARIANTS.get(word, word)


@lru_cache(maxsize=200_000)
def cn_company_parts(name: str) -> tuple[str, str, str] | None:
    """(region, trade name, industry in English) of a Chinese company name without legal form, or None
    when it does not end in a known industry term after at least two characters. Region is "" when
    what precedes the industry is too short to hold one (华为技术: trade name 华为)."""
    industry = next((t for t in _BY_LENGTH if name.endswith(t) and len(name) - len(t) >= 2), None)
    if industry is None:
        return None
    rest = name[:-len(industry)]
    region_size = next((len(r) for r in _THREE_CHARACTER_REGIONS if rest.startswith(r)), 2)
    if len(rest) - region_size < 2:
        return "", rest, INDUSTRY_EN[industry]
    region, trade = rest[:region_size], rest[region_size:]
    if trade[0] in "市省" and len(trade) > 2:  # 上海市华信贸易: region 上海
        trade = trade[1:]
    return region, trade, INDUSTRY_EN[industry]
