"""Cost calculator tab: the form of each calculator, its handlers and the URL state.

Sub-tabs: Training, Fine-tuning, Memory, Scaling, Serving, Fleet, API vs self-host, Calibration, Sources.
All arithmetic lives in costs/; Markdown and figures in demos/costs_views.py and demos/costs_serving_views.py.
URL: ?tab=costs&calc=<train|finetune|serve|fleet|breakeven>&... (keys in costs/urlstate.py).
"""
from __future__ import annotations

import gradio as gr

from costs import api_prices, breakeven, finetune, fleet, memory, serving, sources, training, urlstate
from costs.accelerators import ACCELERATORS
from costs.presets import PRESETS, get_preset
from costs.units import parse_quantity
from demos import costs_serving_views as sviews
from demos import costs_views as views
from demos.common import user_error

CUSTOM = "custom"
GPUS = list(ACCELERATORS)
WEIGHT_CHOICES = list(serving.WEIGHT_BYTES)
# Fields shown in a Textbox (they accept 7e9 / 7B / 40%): the URL loader writes them back as compact text.
TEXT_FIELDS = {"params", "active_params", "tokens", "mfu", "price", "in_tokens", "out_tokens", "api_in", "api_out",
               "qps", "tp"}
CALC_TABS = {"train": "Training 训练", "finetune": "Fine-tuning 微调", "serve": "Serving 推理",
             "fleet": "Fleet 集群", "breakeven": "API vs self-host 自建对比"}


def _opt(value):
    """Empty form fields mean 'use the default'."""
    return None if value in (None, "") else value


def _model(preset, params):
    return (None, params) if preset in (None, "", CUSTOM) else (preset, _opt(params))


# ----------------------------------------------------------------------------------------------- handlers
def estimate_training(params, tokens, gpu, gpus=None, mfu=None, price=None, active_params=None,
                      preset=CUSTOM, price_kind="on-demand", pue=training.DEFAULT_PUE,
                      grid_kg_per_kwh=training.DEFAULT_GRID_KG_PER_KWH, storage_usd_per_gb_month=None,
                      egress_gb=None):
    """Estimate the compute, time, money, energy and CO2 of one training run.

    Args:
        params: total parameters, e.g. "7e9" or "7B".
        tokens: training tokens, e.g. "2e12" or "2T".
        gpu: accelerator name (H100-80GB, A100-80GB, TPUv4, ...; common spellings accepted).
        gpus: number of accelerators; adds wall-clock days. Empty = not computed.
        mfu: model FLOPs utilisation 0-1. Empty = calibrated default (costs/calibration.py) with its error band.
        price: USD per GPU-hour. Empty = the GPU's price preset (source shown in the result).
        active_params: active parameters per token for MoE models. Empty = dense.
        preset: model preset key (adds the attention-FLOPs convention) or "custom".
        price_kind: "on-demand" or "spot" preset when no price is given.
        pue: data-centre power usage effectiveness for the energy estimate.
        grid_kg_per_kwh: grid carbon intensity, kg CO2e per kWh.
        storage_usd_per_gb_month: storage price; empty = AWS S3 Standard list price.
        egress_gb: data moved out; empty = the final bf16 weights once.

    Returns:
        Markdown summary, JSON summary (same keys as `python -m costs train --json`), cost-breakdown figure and
        cost-vs-model-size figure.
    """
    try:
        arch = None
        if preset and preset != CUSTOM:
            p = get_preset(preset)
            arch = {"n_layers": p.n_layers, "n_heads": p.n_heads, "head_dim": p.head_dim, "seq_len": p.context}
        r = training.estimate_training(
            params, tokens, gpu, gpus=_opt(gpus), mfu=_opt(mfu), price=_opt(price), active_params=_opt(active_params),
            arch=arch, price_kind=price_kind or "on-demand", pue=pue, grid_kg_per_kwh=grid_kg_per_kwh,
            storage_usd_per_gb_month=_opt(storage_usd_per_gb_month), egress_gb=_opt(egress_gb))
    except ValueError as exc:
        raise user_error(exc) from None
    return views.training_markdown(r), r.to_dict(), views.breakdown_figure(r), views.cost_vs_size_figure(r)


def plan_memory(preset, params, optimizer, zero_stage, tp, dp, micro_batch, seq_len, recompute, gpu,
                sequence_parallel=True, flash_attention=False):
    """Per-GPU training memory (weights, gradients, optimizer, activations) and the minimum GPU count."""
    try:
        p = get_preset(preset)
        n = parse_quantity(params, "params") if _opt(params) else p.params
        seq = int(seq_len or p.context)
        r = memory.plan_training_memory(n, p.n_layers, p.hidden, p.n_heads, seq, int(micro_batch or 1), optimizer,
                                        int(zero_stage), int(dp or 1), int(tp or 1), recompute, gpu,
                                        bool(sequence_parallel), bool(flash_attention))
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    return views.memory_view(r, p.name, n, micro_batch, seq)


def scaling_advice(compute):
    """Chinchilla-optimal N and D for a compute budget, the loss estimate and the over-training trade-off."""
    try:
        return views.scaling_view(parse_quantity(compute, "compute"))
    except ValueError as exc:
        raise user_error(exc) from None


def serving_estimate(preset, gpu, gpus, batch, context, weights, price, prompt_tokens):
    """Decode tokens/s (bandwidth and compute bounds) and $ per 1M output tokens for a model on a GPU."""
    try:
        p = get_preset(preset)
        wbytes = serving.bytes_for(weights, serving.WEIGHT_BYTES, "weight")
        kw = dict(n_layers=p.n_layers, hidden=p.hidden, n_kv_heads=p.n_kv_heads, head_dim=p.head_dim,
                  context=context, gpus=gpus, active_params=p.active_params, weight_bytes=wbytes,
                  price=_opt(price), kv_elems_per_token_per_layer=p.kv_elems_per_token_per_layer)
        r = serving.estimate_serving(p.params, gpu, batch=batch, prompt_tokens=_opt(prompt_tokens), **kw)
        sweep = [serving.estimate_serving(p.params, gpu, batch=b, **kw) for b in sviews.SWEEP_BATCHES]
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    return sviews.serving_view(p.name, weights, r, sweep)


def finetune_estimate(preset, params, gpu, gpus, method, objective, rank, targets, tokens, epochs, seq, price,
                      paged_optimizer=True):
    """Fine-tuning memory per GPU, minimum GPUs, GPU-hours and $ (full / LoRA / QLoRA, SFT / DPO)."""
    try:
        model, n = _model(preset, params)
        r = finetune.estimate_finetune(gpu, method, objective, model, n, rank, targets, tokens, epochs, seq,
                                       gpus=gpus, price=_opt(price), paged_optimizer=bool(paged_optimizer))
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    return (*views.finetune_view(r), r.to_dict())


def fleet_estimate(preset, params, gpu, qps, prompt, output, ttft, tpot, weights, kv, tp, price, eff):
    """GPUs for a traffic level under TTFT/TPOT targets, and $ per 1M input and output tokens."""
    try:
        model, n = _model(preset, params)
        r = fleet.estimate_fleet(gpu, qps, prompt, output, model, n, _opt(ttft), _opt(tpot), weights, kv, _opt(tp),
                                 _opt(price), efficiency=eff)
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    return sviews.fleet_markdown(r), r.to_dict()


def breakeven_estimate(preset, params, gpu, gpus, util, api_in, api_out, price, in_tokens, out_tokens, weights):
    """Monthly tokens where self-hosting a model on given GPUs becomes cheaper than an API, with a plot."""
    try:
        model, n = _model(preset, params)
        r = breakeven.estimate_break_even(gpu, gpus, api_in, api_out, in_tokens, out_tokens, util, model, n,
                                          _opt(price), weights=weights)
    except (ValueError, TypeError) as exc:
        raise user_error(exc) from None
    return (*sviews.breakeven_view(r), r.to_dict())


def apply_api_model(model):
    """Fill the API price fields from the dated price table."""
    if not model:
        return gr.update(), gr.update()
    price = api_prices.get_api_price(model)
    return urlstate.format_value(price.input_usd_per_1m), urlstate.format_value(price.output_usd_per_1m)


def apply_preset(preset):
    if not preset or preset == CUSTOM:
        return gr.update(), gr.update(), gr.update()
    p = get_preset(preset)
    return (urlstate.format_value(p.params), urlstate.format_value(p.active_params) if p.active_params else "",
            urlstate.format_value(p.tokens))


# ------------------------------------------------------------------------------------------------ URL state
def load_from_url(request: gr.Request):
    """Fill the chosen calculator's form from the query (bad values are skipped with a warning, never an error
    page). Returns the sub-tab selection followed by one update per URL field, calculator by calculator in
    urlstate.FIELDS order."""
    query = request.query_params if request is not None else {}
    state = urlstate.decode_state(query)
    calc = state.get("calc", urlstate.DEFAULT_CALC)
    if calc != urlstate.DEFAULT_CALC and "params" in state and "preset" not in state:
        state["preset"] = CUSTOM  # a bare parameter count: the model's shape is assumed from it
    for error in state.get("_errors", []):
        gr.Warning(f"Link: {error}")
    has_calc_keys = any(key in query for key in urlstate.QUERY_KEYS)
    updates = [gr.Tabs(selected=calc) if has_calc_keys else gr.update()]
    for name, fields in urlstate.FIELDS.items():
        for field in fields:
            if name != calc or field not in state:
                updates.append(gr.update())
            else:
                value = state[field]
                updates.append(urlstate.format_value(value) if field in TEXT_FIELDS else value)
    return updates


def _wire_url(calc: str, components: list) -> None:
    """Keep the address bar in sync with this calculator's form (components in urlstate key order)."""
    for component in components:
        component.change(None, components, None, js=urlstate.sync_url_js(calc), api_visibility="private")


# ------------------------------------------------------------------------------------------------ layout
def _training_tab() -> dict:
    with gr.Row():
        preset = gr.Dropdown([CUSTOM] + list(PRESETS), value="llama2-7b", label="Model preset", min_width=160)
        params = gr.Textbox("6.74e9", label="Parameters N", min_width=120)
        active = gr.Textbox("", label="Active params (MoE)", placeholder="dense", min_width=120)
        tokens = gr.Textbox("2e12", label="Training tokens D", min_width=120)
    with gr.Row():
        gpu = gr.Dropdown(GPUS, value="H100-80GB", label="GPU", min_width=140)
        # no precision/minimum: Gradio would fail on "nan" before our check
        gpus = gr.Number(1024, label="GPUs", step=1, min_width=100)
        mfu = gr.Textbox("", label="MFU", placeholder="calibrated default", min_width=100,
                         info="empty = fitted on published runs (Calibration tab), shown with its error band")
        price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=100,
                           info="empty = dated preset (Sources tab)")
        price_kind = gr.Radio(["on-demand", "spot"], value="on-demand", label="Price preset", min_width=160)
    with gr.Accordion("Energy, storage and egress", open=False):
        with gr.Row():
            pue = gr.Number(training.DEFAULT_PUE, label="PUE", min_width=100)
            grid = gr.Number(training.DEFAULT_GRID_KG_PER_KWH, label="Grid kg CO₂e/kWh", min_width=120)
            storage = gr.Textbox("", label="Storage $/GB-month", placeholder="0.023", min_width=120)
            egress = gr.Textbox("", label="Egress GB", placeholder="final bf16 weights once", min_width=120)
    run = gr.Button("Estimate", variant="primary")
    summary = gr.Markdown()
    with gr.Row():
        breakdown_plot = gr.Plot(label="Cost breakdown", min_width=300)
        size_plot = gr.Plot(label="Cost vs model size", min_width=300)
    with gr.Accordion("JSON (same keys as `python -m costs train --json`)", open=False):
        summary_json = gr.JSON()
    form = [params, tokens, gpu, gpus, mfu, price, active, preset, price_kind, pue, grid, storage, egress]
    run.click(estimate_training, form, [summary, summary_json, breakdown_plot, size_plot],
              api_name="estimate_training")
    # .input (user edits only): a preset arriving from the URL must not overwrite the URL's own params
    preset.input(apply_preset, preset, [params, active, tokens], api_visibility="private")
    return {"url": [preset, params, active, tokens, gpu, gpus, mfu, price], "form": form,
            "outputs": [summary, summary_json, breakdown_plot, size_plot]}


def _finetune_tab() -> dict:
    with gr.Row():
        preset = gr.Dropdown([CUSTOM] + list(PRESETS), value="llama2-7b", label="Model", min_width=150)
        params = gr.Textbox("", label="Params (custom)", placeholder="from preset", min_width=110)
        gpu = gr.Dropdown(GPUS, value="H100-80GB", label="GPU", min_width=120)
        gpus = gr.Number(1, label="GPUs", precision=0, minimum=1, min_width=80)
        method = gr.Radio(list(finetune.METHODS), value="lora", label="Method", min_width=180)
        objective = gr.Radio(list(finetune.OBJECTIVES), value="sft", label="Objective", min_width=130)
    with gr.Row():
        rank = gr.Number(sources.LORA_RANK.value, label="LoRA rank", precision=0, minimum=1, min_width=90,
                         info=views.default_info(sources.LORA_RANK) + "; QLoRA paper: " + views.default_info(
                             sources.QLORA_RANK))
        targets = gr.Dropdown(list(finetune.TARGETS), value="attention-qv", label="Target modules", min_width=140,
                              info="default attention-qv: PEFT's default for Llama, q_proj + v_proj (peft docs, 2025)")
        tokens = gr.Textbox(urlstate.format_value(sources.FINETUNE_TOKENS.value), label="Dataset tokens",
                            min_width=110, info=views.default_info(sources.FINETUNE_TOKENS))
        epochs = gr.Number(1, label="Epochs", min_width=70)
        seq = gr.Number(sources.FINETUNE_SEQ_LEN.value, label="Sequence", precision=0, minimum=1, min_width=90,
                        info=views.default_info(sources.FINETUNE_SEQ_LEN))
        price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=90)
        paged = gr.Checkbox(True, label="QLoRA paged optimizer (Adam states may page to CPU)", min_width=160)
    run = gr.Button("Estimate fine-tuning", variant="primary")
    md, plot = gr.Markdown(), gr.Plot()
    with gr.Accordion("JSON (same keys as `python -m costs finetune --json`)", open=False):
        out_json = gr.JSON()
    url = [preset, params, gpu, gpus, method, objective, rank, targets, tokens, epochs, seq, price]
    run.click(finetune_estimate, url + [paged], [md, plot, out_json], api_visibility="private")
    return {"url": url, "form": url + [paged], "outputs": [md, plot, out_json], "fn": finetune_estimate}


def _memory_tab() -> None:
    with gr.Row():
        m_preset = gr.Dropdown(list(PRESETS), value="llama2-7b", label="Architecture", min_width=160)
        m_params = gr.Textbox("", label="Params override", placeholder="preset", min_width=100)
        m_gpu = gr.Dropdown(GPUS, value="A100-80GB", label="GPU", min_width=120)
        m_opt = gr.Dropdown([(v, k) for k, v in memory.OPTIMIZER_LABELS.items()], value="adam_mixed",
                            label="Optimizer", min_width=160)
    with gr.Row():
        m_zero = gr.Radio([0, 1, 2, 3], value=3, label="ZeRO stage", min_width=160)
        m_tp = gr.Number(1, label="Tensor parallel (divides heads)", precision=0, minimum=1, min_width=90)
        m_dp = gr.Number(8, label="Data parallel", precision=0, minimum=1, min_width=90)
        m_mb = gr.Number(1, label="Micro-batch", precision=0, minimum=1, min_width=90)
        m_seq = gr.Number(4096, label="Sequence", precision=0, minimum=1, min_width=90)
        m_rec = gr.Radio(list(memory.RECOMPUTE_MODES), value="selective", label="Recompute", min_width=200)
        m_sp = gr.Checkbox(True, label="Sequence parallelism (Korthikanti Eq. 2; off = Eq. 1)", min_width=160)
        m_flash = gr.Checkbox(False, label="FlashAttention (attention scores not stored)", min_width=160)
    m_run = gr.Button("Plan memory", variant="primary")
    m_md, m_plot = gr.Markdown(), gr.Plot()
    gr.Markdown("Model states per GPU = (2 + 2 + K)·Ψ/TP, with ZeRO-1/2/3 dividing optimizer / + gradients "
                "/ + weights by DP (Rajbhandari et al. 2019). Activations per layer (Korthikanti et al. 2022): "
                "s·b·h·(34 + 5·a·s/h)/TP with sequence parallelism, s·b·h·(10 + 24/TP + 5·a·s/(h·TP)) without; "
                "FlashAttention or selective recompute drop the 5·a·s/h term; full recompute keeps 2·s·b·h.")
    m_run.click(plan_memory, [m_preset, m_params, m_opt, m_zero, m_tp, m_dp, m_mb, m_seq, m_rec, m_gpu, m_sp,
                              m_flash], [m_md, m_plot], api_visibility="private")


def _scaling_tab() -> None:
    s_compute = gr.Textbox("1e24", label="Compute budget (FLOPs)")
    s_run = gr.Button("Advise", variant="primary")
    s_md, s_plot = gr.Markdown(), gr.Plot()
    s_run.click(scaling_advice, s_compute, [s_md, s_plot], api_visibility="private")


def _serving_tab() -> dict:
    with gr.Row():
        preset = gr.Dropdown(list(PRESETS), value="llama3-8b", label="Model", min_width=160)
        gpu = gr.Dropdown(GPUS, value="H100-80GB", label="GPU", min_width=120)
        gpus = gr.Number(1, label="GPUs", precision=0, minimum=1, min_width=80)
        batch = gr.Number(16, label="Batch", precision=0, minimum=1, min_width=80)
    with gr.Row():
        ctx = gr.Number(4096, label="Context (tokens)", precision=0, minimum=1, min_width=100)
        prompt = gr.Number(1000, label="Prompt tokens", precision=0, minimum=1, min_width=100)
        weights = gr.Dropdown(WEIGHT_CHOICES, value="fp16", label="Weights", min_width=120)
        price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=100)
    run = gr.Button("Estimate serving", variant="primary")
    md, plot = gr.Markdown(), gr.Plot()
    url = [preset, gpu, gpus, batch, ctx, prompt, weights, price]
    run.click(serving_estimate, url, [md, plot], api_visibility="private")
    return {"url": url}


def _fleet_tab() -> dict:
    with gr.Row():
        preset = gr.Dropdown([CUSTOM] + list(PRESETS), value="llama3-70b", label="Model", min_width=150)
        params = gr.Textbox("", label="Params (custom)", placeholder="from preset", min_width=110)
        gpu = gr.Dropdown(GPUS, value="H100-80GB", label="GPU", min_width=120)
        qps = gr.Textbox(urlstate.format_value(sources.QPS.value), label="Requests/s (QPS)", min_width=100,
                         info=views.default_info(sources.QPS))
        prompt = gr.Number(sources.PROMPT_TOKENS.value, label="Prompt tokens", precision=0, minimum=1,
                           min_width=100, info=views.default_info(sources.PROMPT_TOKENS))
        output = gr.Number(sources.OUTPUT_TOKENS.value, label="Output tokens", precision=0, minimum=1,
                           min_width=100, info=views.default_info(sources.OUTPUT_TOKENS))
    with gr.Row():
        ttft = gr.Number(sources.TTFT_TARGET_S.value, label="TTFT target (s)", min_width=100,
                         info=views.default_info(sources.TTFT_TARGET_S))
        tpot = gr.Number(sources.TPOT_TARGET_S.value, label="TPOT target (s)", min_width=100,
                         info=views.default_info(sources.TPOT_TARGET_S))
        weights = gr.Dropdown(WEIGHT_CHOICES, value="fp16", label="Weights", min_width=90)
        kv = gr.Dropdown(list(serving.KV_BYTES), value="fp16", label="KV cache", min_width=90)
        # a Textbox: an empty gr.Number shows 0 in the browser, which its own minimum then rejects
        tp = gr.Textbox("", label="GPUs per replica (TP)", placeholder="auto", min_width=90,
                        info="empty = the cheapest of 1, 2, 4, 8")
        price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=90)
        eff = gr.Slider(0.05, 1.0, value=sources.DECODE_EFFICIENCY.value, step=0.05,
                        label="Measured / roofline decode", info=views.default_info(sources.DECODE_EFFICIENCY))
    run = gr.Button("Size the fleet", variant="primary")
    md = gr.Markdown()
    with gr.Accordion("JSON (same keys as `python -m costs fleet --json`)", open=False):
        out_json = gr.JSON()
    url = [preset, params, gpu, qps, prompt, output, ttft, tpot, weights, kv, tp, price, eff]
    run.click(fleet_estimate, url, [md, out_json], api_visibility="private")
    return {"url": url, "form": url, "outputs": [md, out_json], "fn": fleet_estimate}


def _breakeven_tab() -> dict:
    with gr.Row():
        preset = gr.Dropdown([CUSTOM] + list(PRESETS), value=CUSTOM, label="Model", min_width=150)
        params = gr.Textbox("8e9", label="Params (custom)", min_width=100,
                            info="a Llama-like shape is assumed from the count")
        gpu = gr.Dropdown(GPUS, value="H100-80GB", label="GPU", min_width=120)
        gpus = gr.Number(1, label="GPUs (one set)", precision=0, minimum=1, min_width=90)
        util = gr.Slider(0.05, 1.0, value=sources.UTILISATION.value, step=0.05, label="Utilisation",
                         info=views.default_info(sources.UTILISATION))
        price = gr.Textbox("", label="$/GPU-hour", placeholder="preset", min_width=90)
    with gr.Row():
        api_model = gr.Dropdown([p.model for p in api_prices.load_api_prices()], value="gpt-4o-mini",
                                label="API model (fills the prices)", min_width=160)
        api_in = gr.Textbox("0.15", label="API $/1M input", min_width=100, info="from the dated API table below")
        api_out = gr.Textbox("0.6", label="API $/1M output", min_width=100)
        in_tokens = gr.Textbox(urlstate.format_value(sources.MONTHLY_INPUT_TOKENS.value), label="Input tokens/month",
                               min_width=110, info=views.default_info(sources.MONTHLY_INPUT_TOKENS))
        out_tokens = gr.Textbox(urlstate.format_value(sources.MONTHLY_OUTPUT_TOKENS.value),
                                label="Output tokens/month", min_width=110,
                                info=views.default_info(sources.MONTHLY_OUTPUT_TOKENS))
        weights = gr.Dropdown(WEIGHT_CHOICES, value="fp16", label="Weights", min_width=90)
    run = gr.Button("Compare", variant="primary")
    md, plot = gr.Markdown(), gr.Plot()
    with gr.Accordion("JSON (same keys as `python -m costs breakeven --json`)", open=False):
        out_json = gr.JSON()
    gr.Markdown(sviews.api_prices_markdown())
    url = [preset, params, gpu, gpus, util, api_in, api_out, price, in_tokens, out_tokens, weights]
    api_model.input(apply_api_model, api_model, [api_in, api_out], api_visibility="private")
    run.click(breakeven_estimate, url, [md, plot, out_json], api_visibility="private")
    return {"url": url, "form": url, "outputs": [md, plot, out_json], "fn": breakeven_estimate}


def build(demo: gr.Blocks) -> None:
    gr.Markdown("## Cost calculator · 成本计算\nWhat does it cost to train, fine-tune or serve a model, and when does "
                "self-hosting beat an API? Every default is sourced and dated (see *Sources*); the *Calibration* "
                "tab shows how our training estimates compare with published runs. Sizes accept `7e9`, `7B`, `2T`.")
    with gr.Tabs() as tabs:
        with gr.Tab(CALC_TABS["train"], id="train"):
            train = _training_tab()
        with gr.Tab(CALC_TABS["finetune"], id="finetune"):
            tune = _finetune_tab()
        with gr.Tab("Memory 显存", id="memory"):
            _memory_tab()
        with gr.Tab("Scaling 规模", id="scaling"):
            _scaling_tab()
        with gr.Tab(CALC_TABS["serve"], id="serve"):
            serve = _serving_tab()
        with gr.Tab(CALC_TABS["fleet"], id="fleet"):
            fleet_form = _fleet_tab()
        with gr.Tab(CALC_TABS["breakeven"], id="breakeven"):
            even = _breakeven_tab()
        with gr.Tab("Calibration 校准", id="calibration"):
            gr.Plot(views.calibration_figure())
            gr.Markdown(views.calibration_markdown())
        with gr.Tab("Sources 来源", id="sources"):
            gr.Markdown(views.sources_markdown())

    forms = {"train": train, "finetune": tune, "serve": serve, "fleet": fleet_form, "breakeven": even}
    for calc, form in forms.items():
        _wire_url(calc, form["url"])
    url_outputs = [tabs] + [c for calc in urlstate.FIELDS for c in forms[calc]["url"]]
    loaded = demo.load(load_from_url, None, url_outputs, api_visibility="private", show_progress="hidden")
    loaded = loaded.then(estimate_training, train["form"], train["outputs"], api_visibility="private")
    for form in (tune, fleet_form, even):
        loaded = loaded.then(form["fn"], form["form"], form["outputs"], api_visibility="private")


if __name__ == "__main__":
    with gr.Blocks(title="Cost calculator") as standalone:
        build(standalone)
    standalone.launch()
