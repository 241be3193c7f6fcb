import pytest

from models.languages import (
    AUTO,
    LANGUAGES,
    LOW_CONFIDENCE,
    SUPPORTED_CODES,
    Detection,
    detect_language,
    detect_language_scored,
    display_choices,
    parse_language,
    resolve_source,
)

SENTENCES = {
    "en": [
        "The weather is lovely today and we are going to the beach.",
        "I think this is the best restaurant in town.",
        "Can you send me the report by tomorrow morning?",
        "Our startup has grown quickly over the last year.",
        "She would like to learn how to play the piano.",
        "They have been working on this project for months.",
        "What time does the train leave?",
        "This is not what I ordered.",
        "We should talk to our customers more often.",
        "It was a long day, but the results were worth it.",
        "There are three reasons why the launch was delayed.",
    ],
    "fr": [
        "Je voudrais un café et un croissant, s'il vous plaît.",
        "Nous avons rencontré nos premiers clients la semaine dernière.",
        "Il fait très froid ce matin.",
        "Elle travaille dans une entreprise de logiciels à Paris.",
        "Pourquoi est-ce que le serveur ne répond pas ?",
        "Les investisseurs ont aimé notre présentation.",
        "C'est une bonne idée, mais il faut la tester.",
        "Nous cherchons un développeur qui parle anglais.",
        "Le prix de l'abonnement a augmenté.",
        "Ils sont partis en vacances au mois d'août.",
        "Tu peux m'appeler demain après-midi ?",
    ],
    "de": [
        "Ich habe heute keine Zeit, aber morgen passt es gut.",
        "Wir haben unser erstes Produkt im Mai veröffentlicht.",
        "Das Wetter ist heute sehr schön.",
        "Können Sie mir bitte die Rechnung schicken?",
        "Die Kunden wollen eine einfachere Lösung.",
        "Mein Bruder wohnt seit zwei Jahren in Berlin.",
        "Es ist nicht leicht, ein Startup zu gründen.",
        "Der Zug fährt um acht Uhr ab.",
        "Wir brauchen mehr Daten für das Training.",
        "Sie hat das Problem schnell gelöst.",
        "Wo ist der nächste Supermarkt?",
    ],
    "es": [
        "Me gustaría reservar una mesa para dos personas.",
        "Nuestra empresa tiene clientes en México y Colombia.",
        "Hoy hace mucho calor en la ciudad.",
        "¿Cuánto cuesta el plan mensual?",
        "Los desarrolladores trabajan desde casa los viernes.",
        "El modelo es pequeño pero muy rápido.",
        "Ella estudia medicina en la universidad.",
        "No tenemos suficiente dinero para contratar a otro ingeniero.",
        "Vamos a lanzar la nueva versión la próxima semana.",
        "Gracias por tu ayuda con la mudanza.",
        "Las ventas crecieron un diez por ciento.",
    ],
    "zh": [
        "今天天气很好，我们去公园散步吧。",
        "这家公司刚刚完成了新一轮融资。",
        "请问最近的地铁站在哪里？",
        "我们的模型需要更多高质量的数据。",
        "他每天早上七点起床。",
        "这个价格对小企业来说太贵了。",
        "周末我想在家看书。",
        "创业最难的是找到合适的合伙人。",
        "服务器昨天晚上宕机了两个小时。",
        "谢谢你的建议，我会认真考虑的。",
    ],
    "ja": [
        "今日はとても暑いですね。",
        "この会社は来月新しいサービスを始めます。",
        "駅までどのくらいかかりますか？",
        "私たちのチームは東京にあります。",
        "明日の会議は十時からです。",
        "このモデルは日本語も理解できます。",
        "週末は家族と映画を見に行きました。",
        "申し訳ありませんが、今日は休みです。",
        "コーヒーを一杯ください。",
        "新しいアプリをダウンロードしてみてください。",
    ],
    "ko": [
        "오늘 날씨가 정말 좋네요.",
        "우리 회사는 작년에 설립되었습니다.",
        "지하철역이 어디에 있나요?",
        "이 모델은 한국어를 잘 이해합니다.",
        "주말에 친구들과 영화를 봤어요.",
        "회의는 내일 오전 열 시에 시작합니다.",
        "커피 한 잔 주세요.",
        "투자자들이 우리 제품을 좋아했습니다.",
        "저는 서울에서 일하고 있습니다.",
        "도와주셔서 감사합니다.",
    ],
}
CASES = [(code, sentence) for code, sentences in SENTENCES.items() for sentence in sentences]


def test_every_supported_language_has_ten_test_sentences():
    assert set(SENTENCES) == set(SUPPORTED_CODES)
    assert all(len(sentences) >= 10 for sentences in SENTENCES.values())


@pytest.mark.parametrize("code,sentence", CASES)
def test_detects_language_of_full_sentences(code, sentence):
    assert detect_language(sentence) == code


@pytest.mark.parametrize("code", ["zh", "ja", "ko"])
def test_full_cjk_sentences_are_detected_with_full_confidence(code):
    assert all(detect_language_scored(s).confidence == 1.0 for s in SENTENCES[code])


@pytest.mark.parametrize("code", ["en", "fr", "de", "es"])
def test_most_latin_sentences_are_confident(code):
    confident = [s for s in SENTENCES[code] if detect_language_scored(s).confidence >= LOW_CONFIDENCE]
    assert len(confident) >= 8, [detect_language_scored(s) for s in SENTENCES[code]]


def test_a_paragraph_is_more_confident_than_one_of_its_sentences():
    paragraph = " ".join(SENTENCES["de"][:4])
    paragraph_detection = detect_language_scored(paragraph)
    assert paragraph_detection.code == "de"
    assert paragraph_detection.confidence > 0.9
    assert detect_language_scored("Es ist schön.").confidence < paragraph_detection.confidence


@pytest.mark.parametrize(
    "text,code",
    [
        ("我们用 PyTorch 训练了一个 LLM 模型", "zh"),  # Latin terms inside Chinese
        ("The Chinese word 你好 means hello", "en"),  # a Chinese word quoted in English
        ("東京で AI のスタートアップを始めました", "ja"),  # kanji + kana + Latin
        ("日本経済新聞によると", "ja"),  # kana decides between zh and ja
        ("삼성 Galaxy 새 모델이 출시되었습니다", "ko"),
        ("韓國語 한국어를 배웁니다", "ko"),  # hanja inside Korean
        ("Le café est très bon.", "fr"),
        ("The café was closed.", "en"),  # one borrowed accented word does not flip English
        ("¿Dónde está el baño?", "es"),
    ],
)
def test_mixed_script_and_borrowed_words(text, code):
    assert detect_language(text) == code


@pytest.mark.parametrize("text", ["", "   \n", "12345", "3.14 + 2 = 5.14", "🙂🙂", "!!!", "OK", "Привет, мир"])
def test_no_evidence_falls_back_to_english_with_zero_confidence(text):
    assert detect_language_scored(text) == Detection("en", 0.0)
    assert detect_language(text) == "en"


@pytest.mark.parametrize(
    "text,code", [("好", "zh"), ("谢谢", "zh"), ("네", "ko"), ("Merci", "fr"), ("Danke", "de"), ("Hola", "es"), ("the", "en")]
)
def test_very_short_inputs_are_detected_but_flagged_low_confidence(text, code):
    detection = detect_language_scored(text)
    assert detection.code == code
    assert 0.0 < detection.confidence < LOW_CONFIDENCE


def test_kana_is_decisive_even_when_short():
    assert detect_language_scored("はい").code == "ja"
    assert detect_language_scored("はい").confidence > detect_language_scored("好").confidence


def test_han_only_japanese_is_a_known_blind_spot_reported_as_zh():
    assert detect_language("東京都知事選") == "zh"


def test_non_string_text_falls_back():
    assert detect_language_scored(None) == Detection("en", 0.0)


@pytest.mark.parametrize("code", SUPPORTED_CODES)
def test_parse_language_accepts_codes_case_insensitively(code):
    assert parse_language(code) == code
    assert parse_language(f"  {code.upper()} ") == code


@pytest.mark.parametrize(
    "tag,code",
    [
        ("zh-CN", "zh"),
        ("zh_cn", "zh"),
        ("zh-Hans", "zh"),
        ("zh-Hans-SG", "zh"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("fr-CA", "fr"),
        ("es-419", "es"),
        ("de-AT", "de"),
        ("ja-JP", "ja"),
        ("ko-KR", "ko"),
        ("Chinese", "zh"),
        ("simplified chinese", "zh"),
        ("中文", "zh"),
        ("简体中文", "zh"),
        ("英语", "en"),
        ("日本語", "ja"),
        ("한국어", "ko"),
        ("Français", "fr"),
        ("francais", "fr"),
        ("deutsch", "de"),
        ("Espanol", "es"),
        ("西班牙语", "es"),
    ],
)
def test_parse_language_accepts_tags_and_names(tag, code):
    assert parse_language(tag) == code


@pytest.mark.parametrize("code,lang", LANGUAGES.items())
def test_every_display_name_round_trips(code, lang):
    for name in (lang.english_name, lang.native_name, lang.prompt_name, lang.chinese_name):
        assert parse_language(name) == code


@pytest.mark.parametrize("bad", ["xx", "it", "pt-BR", "", "  ", "auto", "zh-", "en--us", "english please"])
def test_parse_language_rejects_unsupported_with_the_list(bad):
    with pytest.raises(ValueError) as raised:
        parse_language(bad)
    assert str(raised.value) == f"unsupported language {bad!r}; supported: en, zh, ja, ko, fr, de, es"


@pytest.mark.parametrize("tag", ["zh-TW", "zh-Hant", "zh_HK", "zh-Hant-MO"])
def test_traditional_chinese_is_rejected_explicitly(tag):
    with pytest.raises(ValueError, match="Traditional Chinese is not supported"):
        parse_language(tag)


@pytest.mark.parametrize("bad", [None, 3, ["en"]])
def test_parse_language_rejects_non_strings(bad):
    with pytest.raises(ValueError, match="unsupported language"):
        parse_language(bad)


def test_resolve_source_detects_only_for_auto():
    assert resolve_source("auto", "今天天气很好。") == "zh"
    assert resolve_source(" AUTO ", "Das Wetter ist heute sehr schön.") == "de"
    assert resolve_source("fr", "今天天气很好。") == "fr"  # an explicit choice wins over the text
    with pytest.raises(ValueError):
        resolve_source("klingon", "text")


def test_language_data():
    assert SUPPORTED_CODES == ("en", "zh", "ja", "ko", "fr", "de", "es")
    assert LANGUAGES["zh"].native_name == "中文 (简体)"
    assert LANGUAGES["zh"].prompt_name == "Simplified Chinese"
    assert LANGUAGES["ja"].native_name == "日本語"
    assert LANGUAGES["ko"].native_name == "한국어"
    for code, lang in LANGUAGES.items():
        assert lang.code == code
        assert all((lang.english_name, lang.native_name, lang.prompt_name, lang.chinese_name))


def test_display_choices():
    assert display_choices()[0] == ("English", "en")
    assert [code for _, code in display_choices()] == list(SUPPORTED_CODES)
    with_auto = display_choices(include_auto=True)
    assert with_auto[0][1] == AUTO
    assert len(with_auto) == len(SUPPORTED_CODES) + 1


@pytest.mark.parametrize("text,code", [("Gute Nacht", "de"), ("Bonne nuit", "fr"), ("Vielen Dank", "de")])
def test_latin_phrases_outside_the_word_lists_are_left_to_py3langid(text, code):
    detection = detect_language_scored(text)
    assert detection.code == code and 0 < detection.confidence
    assert detect_language_scored(text, use_library=False) == Detection("en", 0.0)


@pytest.mark.parametrize("text,code", [
    ("東京駅", "ja"),  # 駅: a Japanese-only form (Simplified 站, Traditional 車站)
    ("気象庁発表", "ja"),
    ("东京站", "zh"),  # Simplified forms
    ("這個問題我們明天再討論。", "zh"),  # Traditional Chinese shares 東/問/們 with neither list: stays zh
    ("東京都知事選", "zh"),  # no Japanese-only form: the remaining blind spot
])
def test_kanji_only_text_is_japanese_when_it_holds_a_japanese_only_form(text, code):
    assert detect_language(text) == code


def test_detection_note_quotes_the_committed_measurement():
    import json

    from models.languages import LANGID_RESULTS, detection_note

    data = json.loads(LANGID_RESULTS.read_text(encoding="utf-8"))
    ours = data["detectors"]["site"]
    note = detection_note()
    assert ours["correct"]["all"] in note and f"{ours['accuracy']['all']:.1%}" in note
    assert f"{ours['accuracy']['category:kanji_only']:.0%} of kanji-only Japanese" in note
    # what the site runs measured at least as well as each library alone and as the word lists alone
    assert all(ours["accuracy"]["all"] >= data["detectors"][name]["accuracy"]["all"]
               for name in ("lingua", "py3langid", "word-lists-only"))
