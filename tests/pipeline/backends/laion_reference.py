"""laion-clap's own code as the reference for convert_laion_clap (run as a subprocess).

    python laion_reference.py SITE_DIR WORK_DIR

SITE_DIR holds laion-clap 1.1.7, torchlibrosa and their import-time dependencies,
installed with `pip install --no-deps --target` by the test (never into the app's venv).
WORK_DIR holds `arch.json` (a small HTSAT layout in laion's model-config format plus its
"htsat" and "text" sections), `tokenizer/` (the tiny RoBERTa-style tokenizer) and
`inputs.npz` (waveforms at 48 kHz, texts). The script builds laion's CLAP of that layout
with seeded random weights, saves it as laion's training code does
(`{"state_dict": {"module.…": …}}`) to `laion.pt`, loads it back with laion's own
`CLAP_Module.load_ckpt`, and writes laion's embeddings to `reference.npz`.

Stood in for (none of it on the compared path):
- `torchvision`: laion imports `FrozenBatchNorm2d` (batch-norm freezing for training) and
  image transforms/datasets at import time; a stand-in package whose members raise if
  used. PyPI's torchvision does not work beside the CPU torch of this project.
- `RobertaModel.from_pretrained('roberta-base')` (the text tower) and the module-level
  `{Bert,Roberta,Bart}Tokenizer.from_pretrained(...)` calls: the hub is not reachable, so
  they return a tiny `RobertaModel(RobertaConfig(...))` (seeded) and the tiny tokenizer.
- `create_htsat_model`: laion hard-codes the tiny/base/large widths; for model_name
  "test" it builds the same `HTSAT_Swin_Transformer` class with the layout of arch.json.
Everything else (HTSAT, torchlibrosa's STFT and mel with real librosa filters,
get_audio_features' padding/cropping, int16 quantisation, projections) is laion's code.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

SEED = 1234


def _torchvision_stand_in() -> None:
    def unusable(name):
        def fail(*args, **kwargs):
            raise RuntimeError(f"torchvision stand-in: {name} is not available in this test")
        return type(name, (), {"__init__": fail, "__call__": fail})

    class _Module(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return unusable(f"{self.__name__}.{name}")

    for name in ("torchvision", "torchvision.ops", "torchvision.ops.misc",
                 "torchvision.transforms", "torchvision.datasets"):
        sys.modules[name] = _Module(name)
    sys.modules["torchvision"].ops = sys.modules["torchvision.ops"]
    sys.modules["torchvision.ops"].misc = sys.modules["torchvision.ops.misc"]
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]


def main(site: str, work: str) -> None:
    work_dir = Path(work)
    arch = json.loads((work_dir / "arch.json").read_text())

    import numpy as np
    import torch
    import transformers
    from transformers.utils import import_utils

    # Settle transformers' optional-backend checks before SITE_DIR (which has Pillow) and
    # the torchvision stand-in appear, so transformers never tries to use them.
    import_utils.is_torchvision_available()
    import_utils.is_vision_available()
    from transformers import (
        AutoTokenizer,
        BartTokenizer,
        BertTokenizer,
        RobertaConfig,
        RobertaModel,
        RobertaTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(work_dir / "tokenizer")
    text_cfg = arch["text"]
    tower = {"config": text_cfg}  # the text tower laion gets; roberta-base's for layouts

    def tiny_text_tower(cls, *args, **kwargs):
        torch.manual_seed(SEED + 1)
        with torch.device(tower.get("device", "cpu")):
            return RobertaModel(RobertaConfig(**tower["config"]))

    def tiny_tokenizer(cls, *args, **kwargs):
        return tokenizer

    RobertaModel.from_pretrained = classmethod(tiny_text_tower)
    for cls in (RobertaTokenizer, BertTokenizer, BartTokenizer):
        cls.from_pretrained = classmethod(tiny_tokenizer)

    _torchvision_stand_in()
    sys.path.insert(0, site)
    import laion_clap
    from clap_module import add_model_config
    from clap_module import htsat as laion_htsat
    from clap_module import model as laion_model

    real_create = laion_htsat.create_htsat_model
    layout = arch["htsat"]

    def create_htsat_model(audio_cfg, enable_fusion=False, fusion_type="None"):
        if audio_cfg.model_name != "test":
            return real_create(audio_cfg, enable_fusion, fusion_type)
        return laion_htsat.HTSAT_Swin_Transformer(
            spec_size=layout["spec_size"], patch_size=layout["patch_size"],
            patch_stride=tuple(layout["patch_stride"]), num_classes=audio_cfg.class_num,
            embed_dim=layout["embed_dim"], depths=layout["depths"],
            num_heads=layout["num_heads"], window_size=layout["window_size"],
            config=audio_cfg, enable_fusion=enable_fusion, fusion_type=fusion_type,
        )

    laion_model.create_htsat_model = create_htsat_model

    # Register the layout with laion's own registry (its format: no "htsat"/"text").
    cfg_dir = work_dir / "laion_model_configs"
    cfg_dir.mkdir(exist_ok=True)
    laion_cfg = {k: v for k, v in arch.items() if k not in ("htsat", "text")}
    (cfg_dir / "HTSAT-test.json").write_text(json.dumps(laion_cfg))
    add_model_config(cfg_dir)

    torch.manual_seed(SEED)
    source = laion_clap.CLAP_Module(enable_fusion=False, device="cpu", amodel="HTSAT-test")
    with torch.no_grad():
        # Random but not degenerate: perturb every float tensor the random init left at a
        # constant (layer norms, biases, batch-norm statistics), so each one matters.
        g = torch.Generator().manual_seed(SEED)
        for name, t in source.model.state_dict().items():
            if not t.is_floating_point() or "extractor" in name:
                continue
            if "running_var" in name:
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif t.dim() <= 1 and "logit_scale" not in name:
                t.add_(0.1 * torch.randn(t.shape, generator=g))
    state = {"module." + k: v for k, v in source.model.state_dict().items()}
    # Released checkpoints were saved under transformers < 4.31, whose RoBERTa kept
    # position_ids in the state dict (laion's load_state_dict deletes it): so does this one.
    state.setdefault("module.text_branch.embeddings.position_ids",
                     torch.arange(text_cfg["max_position_embeddings"]).expand((1, -1)))
    torch.save({"epoch": 1, "state_dict": state}, work_dir / "laion.pt")

    model = laion_clap.CLAP_Module(enable_fusion=False, device="cpu", amodel="HTSAT-test")
    model.load_ckpt(str(work_dir / "laion.pt"), verbose=False)

    inputs = np.load(work_dir / "inputs.npz")
    audio = []
    for i in range(int(inputs["n_audio"])):
        wav = inputs[f"audio_{i}"].astype(np.float32)
        # rand_trunc crops a clip over 10 s at np.random.randint(0, overflow + 1); the
        # backend draws the same number from RandomState(seed), seed 0.
        np.random.seed(0)
        audio.append(model.get_audio_embedding_from_data(wav[None, :])[0])
    texts = [str(t) for t in inputs["texts"]]
    text = model.get_text_embedding(texts)
    np.savez(work_dir / "reference.npz", audio=np.stack(audio), text=text,
             transformers_version=transformers.__version__)
    # The released layouts (laion's own create_htsat_model, a roberta-base-sized text
    # tower), built without weights: their tensor shapes, for the key-by-key check.
    # (The audio tower is built for real: torchlibrosa's constants refuse the meta device.)
    tower.update(config=json.loads(inputs["roberta_base"].item()), device="meta")
    layouts = {}
    for name in [str(n) for n in inputs["released"]]:
        released = laion_clap.CLAP_Module(enable_fusion=False, device="meta", amodel=name)
        shapes = {k: list(v.shape) for k, v in released.model.state_dict().items()}
        shapes.setdefault("text_branch.embeddings.position_ids",
                          [1, tower["config"]["max_position_embeddings"]])
        layouts[name] = shapes
    (work_dir / "released_layouts.json").write_text(json.dumps(layouts))

    used = sorted({name.split(".")[0] for name, m in list(sys.modules.items())
                   if str(getattr(m, "__file__", "") or "").startswith(site)})
    print(f"laion-clap reference: {len(audio)} clips, {len(texts)} texts; "
          f"packages used from {site}: {', '.join(used)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
