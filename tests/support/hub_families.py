"""Every keras_hub family that builds offline at tiny size, with the tasks built on it.

Nothing is downloaded: each backbone is built from constructor arguments (the
sizes keras_hub's own backbone tests use, ``keras_hub/src/models/*/*_backbone_test.py``
of keras-hub 0.32, shrunk where those build millions of parameters), each task
from ``task_class(backbone=..., preprocessor=None)`` (with ``num_classes`` where the
class needs it). Import after ``pytest.importorskip("keras_hub")``.

``VARIANTS`` names one backbone configuration each (``gemma2`` is ``GemmaBackbone``
with Gemma 2's options); :func:`backbone` builds one, :func:`tasks` lists the task
classes that take it, :func:`task` builds one. ``NOT_BUILT`` names the backbone
classes of ``keras_hub.models`` not built here, with the reason.

:mod:`support.hub_zoo` builds five of these families again at other sizes, with fixed
names, for the tests that pin shapes and layer paths (its docstring says why).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras_hub

_m = keras_hub.models

#: Backbones built from plain constructor arguments: variant -> (class name, kwargs).
_PLAIN: dict[str, tuple[str, dict[str, Any]]] = {
    "albert": (
        "AlbertBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "num_groups": 1,
            "num_inner_repetitions": 1,
            "embedding_dim": 16,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "bart": (
        "BartBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "bert": (
        "BertBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "bloom": (
        "BloomBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 4,
            "hidden_dim": 8,
            "intermediate_dim": 32,
        },
    ),
    "cspnet": (
        "CSPNetBackbone",
        {
            "stem_filters": 32,
            "stem_kernel_size": 3,
            "stem_strides": 1,
            "stackwise_strides": 2,
            "stackwise_depth": [1, 2, 8],
            "stackwise_num_filters": [16, 24, 48],
            "image_shape": (None, None, 3),
            "down_growth": True,
            "bottle_ratio": (0.5, 1.0),
            "block_ratio": (1.0, 0.5),
            "expand_ratio": (2.0, 1.0),
            "block_type": "dark_block",
            "stage_type": "csp",
            "stem_padding": "same",
        },
    ),
    "deberta_v3": (
        "DebertaV3Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "deit": (
        "DeiTBackbone",
        {
            "image_shape": (28, 28, 3),
            "patch_size": 4,
            "num_layers": 3,
            "hidden_dim": 48,
            "num_heads": 6,
            "intermediate_dim": 192,
            "use_mha_bias": True,
        },
    ),
    "densenet": (
        "DenseNetBackbone",
        {
            "stackwise_num_repeats": [2, 4, 6, 4],
            "compression_ratio": 0.5,
            "growth_rate": 2,
            "image_shape": (32, 32, 3),
        },
    ),
    "dinov2": (
        "DINOV2Backbone",
        {
            "patch_size": 14,
            "num_layers": 2,
            "hidden_dim": 16,
            "num_heads": 2,
            "intermediate_dim": 64,
            "layer_scale_init_value": 1.0,
            "num_register_tokens": 0,
            "use_swiglu_ffn": False,
            "image_shape": (70, 70, 3),
        },
    ),
    "dinov2_registers": (
        "DINOV2Backbone",
        {
            "patch_size": 14,
            "num_layers": 2,
            "hidden_dim": 16,
            "num_heads": 2,
            "intermediate_dim": 64,
            "layer_scale_init_value": 1.0,
            "num_register_tokens": 4,
            "use_swiglu_ffn": True,
            "image_shape": (70, 70, 3),
        },
    ),
    "dinov3": (
        "DINOV3Backbone",
        {
            "patch_size": 16,
            "num_layers": 2,
            "hidden_dim": 16,
            "num_heads": 2,
            "intermediate_dim": 64,
            "layer_scale_init_value": 1.0,
            "num_register_tokens": 4,
            "use_gated_mlp": False,
            "image_shape": (64, 64, 3),
        },
    ),
    "distil_bert": (
        "DistilBertBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "edrec": (
        "EdRecBackbone",
        {
            "vocab_size": 10,
            "num_layers_enc": 2,
            "num_layers_dec": 2,
            "num_heads": 2,
            "hidden_dim": 4,
            "intermediate_dim": 8,
            "dropout": 0.0,
        },
    ),
    "efficientnet": (
        "EfficientNetBackbone",
        {
            "stackwise_kernel_sizes": [3, 3, 3, 3, 3, 3],
            "stackwise_num_repeats": [1, 1, 1, 1, 1, 1],
            "stackwise_input_filters": [8, 8, 8, 8, 8, 8],
            "stackwise_output_filters": [8, 8, 8, 8, 8, 16],
            "stackwise_expansion_ratios": [1, 4, 4, 4, 6, 6],
            "stackwise_squeeze_and_excite_ratios": [0.0, 0.0, 0, 0.25, 0.25, 0.25],
            "stackwise_strides": [1, 2, 2, 2, 1, 2],
            "stackwise_block_types": ["fused", "fused", "fused", "unfused", "unfused", "unfused"],
            "stackwise_force_input_filters": [0, 0, 0, 0, 0, 0],
            "stackwise_nores_option": [False, False, False, False, False, False],
            "width_coefficient": 1.0,
            "depth_coefficient": 1.0,
        },
    ),
    "electra": (
        "ElectraBackbone",
        {
            "vocab_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "embedding_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "esm": (
        "ESMBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 1,
            "hidden_dim": 2,
            "intermediate_dim": 4,
        },
    ),
    "f_net": (
        "FNetBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "falcon": (
        "FalconBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_attention_heads": 8,
            "hidden_dim": 16,
            "intermediate_dim": 32,
        },
    ),
    "flux": (
        "FluxBackbone",
        {
            "input_channels": 8,
            "hidden_size": 32,
            "mlp_ratio": 2.0,
            "num_heads": 2,
            "depth": 1,
            "depth_single_blocks": 1,
            "axes_dim": [4, 6, 6],
            "theta": 10000,
            "use_bias": True,
            "guidance_embed": True,
            "image_shape": (4, 8),
            "text_shape": (4, 8),
            "image_ids_shape": (4, 3),
            "text_ids_shape": (4, 3),
            "y_shape": (8,),
        },
    ),
    "gemma": (
        "GemmaBackbone",
        {
            "vocabulary_size": 20,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 1,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "head_dim": 4,
            "layer_norm_epsilon": 1e-06,
        },
    ),
    "gemma2": (
        "GemmaBackbone",
        {
            "vocabulary_size": 20,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "head_dim": 4,
            "sliding_window_size": 5,
            "attention_logit_soft_cap": 50,
            "final_logit_soft_cap": 30,
            "layer_norm_epsilon": 1e-06,
            "query_head_dim_normalize": False,
            "use_post_ffw_norm": True,
            "use_post_attention_norm": True,
            "use_sliding_window_attention": True,
        },
    ),
    "gpt2": (
        "GPT2Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "gpt_neo_x": (
        "GPTNeoXBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "gpt_oss": (
        "GptOssBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_query_heads": 8,
            "num_key_value_heads": 4,
            "hidden_dim": 16,
            "intermediate_dim": 8,
            "num_experts": 2,
            "top_k": 2,
            "sliding_window": 2,
        },
    ),
    "hgnetv2": (
        "HGNetV2Backbone",
        {
            "embedding_size": 32,
            "stem_channels": [3, 16, 32],
            "hidden_act": "relu",
            "use_learnable_affine_block": False,
            "image_shape": (64, 64, 3),
            "depths": [1, 1],
            "hidden_sizes": [64, 128],
            "stackwise_stage_filters": [[32, 16, 64, 1, 1, 3], [64, 32, 128, 1, 1, 3]],
            "apply_downsample": [False, True],
            "use_lightweight_conv_block": [False, False],
            "out_features": ["stem", "stage1", "stage2"],
        },
    ),
    "llama": (
        "LlamaBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "hidden_dim": 8,
            "intermediate_dim": 8,
        },
    ),
    "mistral": (
        "MistralBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_query_heads": 8,
            "num_key_value_heads": 4,
            "hidden_dim": 16,
            "intermediate_dim": 8,
            "sliding_window": 2,
        },
    ),
    "mit": (
        "MiTBackbone",
        {
            "layerwise_depths": [2, 2],
            "image_shape": (32, 32, 3),
            "hidden_dims": [4, 8],
            "num_layers": 2,
            "layerwise_num_heads": [1, 2],
            "layerwise_sr_ratios": [8, 4],
            "max_drop_path_rate": 0.1,
            "layerwise_patch_sizes": [7, 3],
            "layerwise_strides": [4, 2],
        },
    ),
    "mixtral": (
        "MixtralBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_query_heads": 8,
            "num_key_value_heads": 4,
            "hidden_dim": 16,
            "intermediate_dim": 8,
            "num_experts": 2,
            "top_k": 2,
            "sliding_window": 2,
        },
    ),
    "mobilenet": (
        "MobileNetBackbone",
        {
            "stackwise_expansion": [[40, 56], [64, 144, 144], [72, 72], [144, 288, 288]],
            "stackwise_num_blocks": [2, 3, 2, 3],
            "stackwise_num_filters": [[16, 16], [24, 24, 24], [24, 24], [48, 48, 48]],
            "stackwise_kernel_size": [[3, 3], [5, 5, 5], [5, 5], [5, 5, 5]],
            "stackwise_num_strides": [[2, 1], [2, 1, 1], [1, 1], [2, 1, 1]],
            "stackwise_se_ratio": [
                [None, None],
                [0.25, 0.25, 0.25],
                [0.25, 0.25],
                [0.25, 0.25, 0.25],
            ],
            "stackwise_activation": [
                ["relu", "relu"],
                ["hard_swish", "hard_swish", "hard_swish"],
                ["hard_swish", "hard_swish"],
                ["hard_swish", "hard_swish", "hard_swish"],
                ["hard_swish"],
            ],
            "stackwise_padding": [[1, 1], [2, 2, 2], [2, 2], [2, 2, 2]],
            "output_num_filters": 64,
            "input_activation": "hard_swish",
            "output_activation": "hard_swish",
            "input_num_filters": 16,
            "image_shape": (32, 32, 3),
            "depthwise_filters": 8,
            "depthwise_stride": 2,
            "depthwise_residual": False,
            "squeeze_and_excite": 0.5,
            "last_layer_filter": 48,
        },
    ),
    "mobilenetv5": (
        "MobileNetV5Backbone",
        {
            "stackwise_block_types": [["er"], ["uir", "uir"]],
            "stackwise_num_blocks": [1, 2],
            "stackwise_num_filters": [[24], [48, 48]],
            "stackwise_strides": [[2], [2, 1]],
            "stackwise_act_layers": [["relu"], ["relu", "relu"]],
            "stackwise_exp_ratios": [[4.0], [6.0, 6.0]],
            "stackwise_se_ratios": [[0.0], [0.0, 0.0]],
            "stackwise_dw_kernel_sizes": [[0], [5, 5]],
            "stackwise_dw_start_kernel_sizes": [[0], [0, 0]],
            "stackwise_dw_end_kernel_sizes": [[0], [0, 0]],
            "stackwise_exp_kernel_sizes": [[3], [0, 0]],
            "stackwise_pw_kernel_sizes": [[1], [0, 0]],
            "stackwise_num_heads": [[0], [0, 0]],
            "stackwise_key_dims": [[0], [0, 0]],
            "stackwise_value_dims": [[0], [0, 0]],
            "stackwise_kv_strides": [[0], [0, 0]],
            "stackwise_use_cpe": [[False], [False, False]],
            "image_shape": (32, 32, 3),
            "stem_size": 16,
            "use_msfa": False,
        },
    ),
    "moonshine": (
        "MoonshineBackbone",
        {
            "vocabulary_size": 32,
            "filter_dim": 8,
            "encoder_num_layers": 2,
            "decoder_num_layers": 2,
            "hidden_dim": 8,
            "intermediate_dim": 16,
            "encoder_num_heads": 2,
            "decoder_num_heads": 2,
            "feedforward_expansion_factor": 4,
            "encoder_use_swiglu_activation": False,
            "decoder_use_swiglu_activation": True,
            "max_position_embeddings": 64,
            "pad_head_dim_to_multiple_of": None,
            "partial_rotary_factor": 0.62,
            "dropout": 0.0,
            "initializer_range": 0.02,
            "rope_theta": 10000.0,
            "attention_bias": False,
            "attention_dropout": 0.0,
        },
    ),
    "opt": (
        "OPTBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "pali_gemma": (
        "PaliGemmaBackbone",
        {
            "vocabulary_size": 256,
            "image_size": 16,
            "num_layers": 2,
            "num_query_heads": 2,
            "num_key_value_heads": 1,
            "hidden_dim": 8,
            "intermediate_dim": 16,
            "head_dim": 4,
            "vit_patch_size": 4,
            "vit_num_layers": 2,
            "vit_num_heads": 2,
            "vit_hidden_dim": 8,
            "vit_intermediate_dim": 16,
        },
    ),
    "pali_gemma2": (
        "PaliGemmaBackbone",
        {
            "vocabulary_size": 256,
            "image_size": 16,
            "num_layers": 2,
            "num_query_heads": 2,
            "num_key_value_heads": 1,
            "hidden_dim": 8,
            "intermediate_dim": 16,
            "head_dim": 4,
            "vit_patch_size": 4,
            "vit_num_layers": 2,
            "vit_num_heads": 2,
            "vit_hidden_dim": 8,
            "vit_intermediate_dim": 16,
            "query_head_dim_normalize": True,
            "use_post_ffw_norm": True,
            "use_post_attention_norm": True,
            "final_logit_soft_cap": 30,
            "attention_logit_soft_cap": 50,
            "use_sliding_window_attention": True,
            "sliding_window_size": 4096,
        },
    ),
    "phi3": (
        "Phi3Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "hidden_dim": 8,
            "intermediate_dim": 8,
        },
    ),
    "qwen3_5": (
        "Qwen3_5Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 4,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "layer_types": [
                "linear_attention",
                "linear_attention",
                "linear_attention",
                "full_attention",
            ],
            "partial_rotary_factor": 0.25,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 4,
            "linear_value_head_dim": 4,
            "linear_conv_kernel_dim": 4,
        },
    ),
    "qwen3_5_moe": (
        "Qwen3_5MoeBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 4,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 8,
            "hidden_dim": 16,
            "moe_intermediate_dim": 8,
            "shared_expert_intermediate_size": 8,
            "num_experts": 4,
            "top_k": 2,
            "layer_types": [
                "linear_attention",
                "linear_attention",
                "linear_attention",
                "full_attention",
            ],
            "partial_rotary_factor": 0.25,
            "linear_num_key_heads": 2,
            "linear_num_value_heads": 4,
            "linear_key_head_dim": 4,
            "linear_value_head_dim": 4,
            "linear_conv_kernel_dim": 4,
            "router_aux_loss_coefficient": 0.01,
            "dtype": "float32",
        },
    ),
    "qwen3": (
        "Qwen3Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 2,
            "hidden_dim": 8,
            "intermediate_dim": 8,
        },
    ),
    "qwen3_moe": (
        "Qwen3MoeBackbone",
        {
            "vocabulary_size": 20,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "head_dim": 2,
            "moe_intermediate_dim": 16,
            "num_experts": 4,
            "top_k": 2,
            "norm_top_k_prob": True,
            "decoder_sparse_step": 1,
            "layer_norm_epsilon": 1e-06,
            "rope_max_wavelength": 10000,
            "rope_scaling_factor": 1.0,
            "dropout": 0.0,
            "sliding_window_size": 4096,
            "router_aux_loss_coefficient": 0.01,
            "tie_word_embeddings": False,
            "mlp_only_layers": [],
            "dtype": "float32",
        },
    ),
    "qwen_moe": (
        "QwenMoeBackbone",
        {
            "vocabulary_size": 20,
            "num_layers": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 2,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "moe_intermediate_dim": 16,
            "shared_expert_intermediate_dim": 32,
            "num_experts": 4,
            "top_k": 2,
            "norm_top_k_prob": True,
            "decoder_sparse_step": 1,
            "layer_norm_epsilon": 1e-06,
            "rope_max_wavelength": 10000,
            "rope_scaling_factor": 1.0,
            "dropout": 0.0,
            "use_sliding_window_attention": False,
            "sliding_window_size": 4096,
            "router_aux_loss_coefficient": 0.01,
            "tie_word_embeddings": False,
            "output_router_logits": False,
            "mlp_only_layers": [],
            "dtype": "float32",
        },
    ),
    "resnet": (
        "ResNetBackbone",
        {
            "input_conv_filters": [64],
            "input_conv_kernel_sizes": [7],
            "stackwise_num_filters": [64, 64, 64],
            "stackwise_num_blocks": [2, 2, 2],
            "stackwise_num_strides": [1, 2, 2],
            "image_shape": (None, None, 3),
            "block_type": "bottleneck_block",
            "use_pre_activation": False,
        },
    ),
    "roberta": (
        "RobertaBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "roformer_v2": (
        "RoformerV2Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 1,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "head_size": 2,
        },
    ),
    "rwkv7": (
        "RWKV7Backbone",
        {
            "vocabulary_size": 10,
            "hidden_size": 16,
            "num_layers": 2,
            "head_size": 4,
            "intermediate_dim": 32,
            "gate_lora": 32,
            "mv_lora": 16,
            "aaa_lora": 16,
            "decay_lora": 16,
        },
    ),
    "smollm3": (
        "SmolLM3Backbone",
        {
            "vocabulary_size": 100,
            "hidden_dim": 64,
            "intermediate_dim": 128,
            "num_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "rope_layer_enabled_list": [True, True],
            "layer_types": ["attention", "attention"],
            "mlp_bias": False,
            "layer_norm_epsilon": 1e-05,
            "max_position_embeddings": 128,
            "rope_theta": 10000.0,
            "partial_rotary_factor": 1.0,
        },
    ),
    "swin_transformer": (
        "SwinTransformerBackbone",
        {
            "image_shape": (32, 32, 3),
            "embed_dim": 32,
            "depths": (2, 2),
            "num_heads": (2, 4),
            "window_size": 4,
        },
    ),
    "t5": (
        "T5Backbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
        },
    ),
    "t5gemma2": (
        "T5Gemma2Backbone",
        {
            "vocabulary_size": 100,
            "encoder_hidden_dim": 32,
            "encoder_intermediate_dim": 64,
            "encoder_num_layers": 2,
            "encoder_num_attention_heads": 4,
            "encoder_num_key_value_heads": 2,
            "encoder_head_dim": 8,
            "encoder_layer_types": ["sliding_attention", "full_attention"],
            "decoder_hidden_dim": 32,
            "decoder_intermediate_dim": 64,
            "decoder_num_layers": 2,
            "decoder_num_attention_heads": 4,
            "decoder_num_key_value_heads": 2,
            "decoder_head_dim": 8,
            "decoder_layer_types": ["sliding_attention", "full_attention"],
            "dropout_rate": 0.1,
            "rms_norm_eps": 1e-06,
            "tie_word_embeddings": True,
            "query_pre_attn_scalar": 1.0,
            "attention_bias": False,
            "hidden_activation": "gelu_approximate",
            "sliding_window": 16,
            "cross_attention_hidden_size": 32,
            "attn_logit_softcapping": 50.0,
            "rope_max_wavelength": 10000.0,
            "initializer_range": 0.04,
            "attention_dropout": 0.1,
            "use_query_key_norm": True,
        },
    ),
    "t5gemma": (
        "T5GemmaBackbone",
        {
            "vocabulary_size": 100,
            "encoder_hidden_dim": 32,
            "encoder_intermediate_dim": 64,
            "encoder_num_layers": 2,
            "encoder_num_attention_heads": 4,
            "encoder_num_key_value_heads": 2,
            "encoder_head_dim": 8,
            "encoder_layer_types": ["sliding_attention", "full_attention"],
            "decoder_hidden_dim": 32,
            "decoder_intermediate_dim": 64,
            "decoder_num_layers": 2,
            "decoder_num_attention_heads": 4,
            "decoder_num_key_value_heads": 2,
            "decoder_head_dim": 8,
            "decoder_layer_types": ["sliding_attention", "full_attention"],
            "dropout_rate": 0.1,
            "rms_norm_eps": 1e-06,
            "tie_word_embeddings": True,
            "query_pre_attn_scalar": 1.0,
            "attention_bias": False,
            "hidden_activation": "gelu_approximate",
            "sliding_window": 16,
            "cross_attention_hidden_size": 32,
            "attn_logit_softcapping": 50.0,
            "rope_max_wavelength": 10000.0,
            "initializer_range": 0.04,
            "attention_dropout": 0.1,
        },
    ),
    "vgg": (
        "VGGBackbone",
        {
            "stackwise_num_repeats": [2, 3, 3],
            "stackwise_num_filters": [8, 16, 16],
            "image_shape": (32, 32, 3),
        },
    ),
    "video_prism_video_only": (
        "VideoPrismBackbone",
        {
            "image_shape": (28, 28, 3),
            "num_frames": 4,
            "patch_size": 4,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "num_heads": 2,
            "num_spatial_layers": 1,
            "num_temporal_layers": 1,
            "num_auxiliary_layers": 1,
            "vocabulary_size": 0,
            "num_text_layers": 0,
        },
    ),
    "video_prism": (
        "VideoPrismBackbone",
        {
            "num_frames": 4,
            "patch_size": 4,
            "hidden_dim": 16,
            "intermediate_dim": 32,
            "num_heads": 2,
            "num_spatial_layers": 1,
            "num_temporal_layers": 1,
            "num_auxiliary_layers": 1,
            "vocabulary_size": 100,
            "num_text_layers": 1,
            "attention_logit_soft_cap": 50.0,
            "image_shape": (28, 28, 3),
        },
    ),
    "vit": (
        "ViTBackbone",
        {
            "image_shape": (28, 28, 3),
            "patch_size": (4, 4),
            "num_layers": 3,
            "hidden_dim": 48,
            "num_heads": 6,
            "mlp_dim": 192,
            "use_mha_bias": True,
        },
    ),
    "vit_det": (
        "ViTDetBackbone",
        {
            "image_shape": (16, 16, 3),
            "patch_size": 2,
            "hidden_size": 4,
            "num_layers": 2,
            "global_attention_layer_indices": [2, 5, 8, 11],
            "intermediate_dim": 16,
            "num_heads": 2,
            "num_output_channels": 2,
            "window_size": 2,
        },
    ),
    "whisper": (
        "WhisperBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_encoder_sequence_length": 6,
            "max_decoder_sequence_length": 6,
        },
    ),
    "xception": (
        "XceptionBackbone",
        {
            "stackwise_conv_filters": [[32, 64], [128, 128], [256, 256]],
            "stackwise_pooling": [False, True, False],
            "image_shape": (None, None, 3),
        },
    ),
    "xlm_roberta": (
        "XLMRobertaBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
            "max_sequence_length": 5,
        },
    ),
    "xlnet": (
        "XLNetBackbone",
        {
            "vocabulary_size": 10,
            "num_layers": 2,
            "num_heads": 2,
            "hidden_dim": 2,
            "intermediate_dim": 4,
        },
    ),
}


def _resnet(**kwargs: Any) -> Any:
    return _m.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 64, 64, 64],
        stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        use_pre_activation=False,
        **kwargs,
    )


def _clip() -> Any:
    from keras_hub.src.models.clip.clip_text_encoder import CLIPTextEncoder
    from keras_hub.src.models.clip.clip_vision_encoder import CLIPVisionEncoder

    return _m.CLIPBackbone(
        vision_encoder=CLIPVisionEncoder(16, 16, 2, 2, 32, image_shape=(32, 32, 3)),
        text_encoder=CLIPTextEncoder(64, 16, 16, 2, 2, 32, max_sequence_length=8),
        projection_dim=16,
    )


def _metaclip_2() -> Any:
    from keras_hub.src.models.metaclip_2.metaclip_2_text_encoder import MetaCLIP2TextEncoder
    from keras_hub.src.models.metaclip_2.metaclip_2_vision_encoder import (
        MetaCLIP2VisionEncoder,
    )

    return _m.MetaCLIP2Backbone(
        vision_encoder=MetaCLIP2VisionEncoder(16, 16, 2, 2, 32, image_shape=(32, 32, 3)),
        text_encoder=MetaCLIP2TextEncoder(64, 16, 16, 2, 2, 32, max_sequence_length=8),
        projection_dim=16,
    )


def _siglip(projection_dim: int | None = None) -> Any:
    from keras_hub.src.models.siglip.siglip_text_encoder import SigLIPTextEncoder
    from keras_hub.src.models.siglip.siglip_vision_encoder import SigLIPVisionEncoder

    text = {"projection_dim": projection_dim} if projection_dim else {}
    return _m.SigLIPBackbone(
        vision_encoder=SigLIPVisionEncoder(
            16, projection_dim or 16, 2, 2, 32, image_shape=(32, 32, 3)
        ),
        text_encoder=SigLIPTextEncoder(64, 16, 16, 2, 2, 32, max_sequence_length=8, **text),
    )


def _sam() -> Any:
    from keras_hub.src.models.sam.sam_mask_decoder import SAMMaskDecoder
    from keras_hub.src.models.sam.sam_prompt_encoder import SAMPromptEncoder

    return _m.SAMBackbone(
        image_encoder=_m.ViTDetBackbone(
            hidden_size=16,
            num_layers=2,
            intermediate_dim=32,
            num_heads=2,
            global_attention_layer_indices=[1],
            patch_size=16,
            num_output_channels=8,
            window_size=2,
            image_shape=(16, 16, 3),
        ),
        prompt_encoder=SAMPromptEncoder(
            hidden_size=8,
            image_embedding_size=(1, 1),
            input_image_size=(16, 16),
            mask_in_channels=16,
        ),
        mask_decoder=SAMMaskDecoder(
            num_layers=2,
            hidden_size=8,
            intermediate_dim=16,
            num_heads=2,
            embedding_dim=8,
            num_multimask_outputs=3,
            iou_head_depth=3,
            iou_head_hidden_dim=8,
        ),
    )


def _segformer() -> Any:
    encoder = _m.MiTBackbone(**_PLAIN["mit"][1])
    return _m.SegFormerBackbone(projection_filters=16, image_encoder=encoder)


def _parseq() -> Any:
    encoder = _m.ViTBackbone(
        image_shape=(16, 32, 3),
        patch_size=(4, 8),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
        use_class_token=False,
    )
    return _m.PARSeqBackbone(
        image_encoder=encoder,
        vocabulary_size=12,
        max_label_length=6,
        decoder_hidden_dim=16,
        num_decoder_layers=1,
        num_decoder_heads=2,
        decoder_mlp_dim=32,
        dropout_rate=0.0,
        attention_dropout=0.0,
    )


def _stable_diffusion_3() -> Any:
    from keras_hub.src.models.clip.clip_text_encoder import CLIPTextEncoder
    from keras_hub.src.models.vae.vae_backbone import VAEBackbone  # not in keras_hub.models

    vae = VAEBackbone([32, 32, 32, 32], [1, 1, 1, 1], [32, 32, 32, 32], [1, 1, 1, 1])
    return _m.StableDiffusion3Backbone(
        mmdit_patch_size=2,
        mmdit_hidden_dim=16,
        mmdit_num_layers=2,
        mmdit_num_heads=2,
        mmdit_position_size=16,
        mmdit_qk_norm=None,
        mmdit_dual_attention_indices=None,
        vae=vae,
        clip_l=CLIPTextEncoder(20, 16, 16, 2, 2, 32, "quick_gelu", -2, name="clip_l"),
        clip_g=CLIPTextEncoder(20, 16, 16, 2, 2, 32, "gelu", -2, name="clip_g"),
        image_shape=(32, 32, 3),
    )


_GEMMA3 = {
    "vocabulary_size": 256,
    "image_size": 16,
    "num_layers": 6,
    "num_query_heads": 2,
    "num_key_value_heads": 1,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "head_dim": 4,
    "query_head_dim_normalize": True,
    "use_query_key_norm": True,
    "use_post_ffw_norm": True,
    "use_post_attention_norm": True,
    "final_logit_soft_cap": None,
    "attention_logit_soft_cap": None,
    "use_sliding_window_attention": True,
    "sliding_window_size": 1024,
}
_GEMMA4 = {
    "vocabulary_size": 256,
    "image_size": 16,
    "num_layers": 6,
    "num_query_heads": 2,
    "num_key_value_heads": 1,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "head_dim": 4,
    "use_sliding_window_attention": True,
    "sliding_window_size": 16,
    "attention_logit_soft_cap": None,
    "final_logit_soft_cap": None,
}
_PLAIN["gemma3"] = ("Gemma3Backbone", _GEMMA3)
_PLAIN["gemma4"] = ("Gemma4Backbone", _GEMMA4)


def _gemma3_vision() -> Any:
    from keras_hub.src.models.gemma3.gemma3_vision_encoder import Gemma3VisionEncoder

    vision = Gemma3VisionEncoder(
        image_size=16,
        patch_size=4,
        pool_size=2,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        output_dim=8,
    )
    return _m.Gemma3Backbone(vision_encoder=vision, **_GEMMA3)


def _gemma4_vision() -> Any:
    from keras_hub.src.models.gemma4.gemma4_vision_encoder import Gemma4VisionEncoder

    vision = Gemma4VisionEncoder(
        image_size=16,
        patch_size=4,
        pool_size=2,
        num_layers=2,
        num_heads=2,
        head_dim=4,
        num_key_value_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        output_dim=8,
    )
    return _m.Gemma4Backbone(vision_encoder=vision, **_GEMMA4)


#: Backbones built from other keras_hub models (encoders, sub-backbones).
_COMPOSITE: dict[str, Callable[[], Any]] = {
    "basnet": lambda: _m.BASNetBackbone(image_encoder=_resnet(), num_classes=1),
    "clip": _clip,
    "gemma3_vision": _gemma3_vision,
    "gemma4_vision": _gemma4_vision,
    "deeplab_v3": lambda: _m.DeepLabV3Backbone(
        image_encoder=_resnet(),
        low_level_feature_key="P2",
        spatial_pyramid_pooling_key="P4",
        dilation_rates=[2, 4],
        upsampling_size=4,
        image_shape=(32, 32, 3),
    ),
    "metaclip_2": _metaclip_2,
    "parseq": _parseq,
    "retinanet": lambda: _m.RetinaNetBackbone(
        image_encoder=_resnet(image_shape=(None, None, 3)), min_level=3, max_level=5, use_p5=True
    ),
    "sam": _sam,
    "segformer": _segformer,
    "siglip": _siglip,
    "siglip2": lambda: _siglip(projection_dim=32),
    "stable_diffusion_3": _stable_diffusion_3,
}

#: Backbone classes of keras_hub.models not built here, and why.
NOT_BUILT: dict[str, str] = {
    "FeaturePyramidBackbone": "an abstract base class (ResNet and others subclass it)",
    "ESM2Backbone": "the same class as ESMBackbone (an alias)",
    "QwenBackbone": "the same class as Qwen2Backbone (an alias), built as qwen2",
    "SmolLMBackbone": "the same class as SmolLM3Backbone (an alias)",
    "BLIP2Backbone": "its language model (BLIP2CustomOPT) is not exported by keras_hub.models",
    "PARSeqBackbone's task": "PARSeqCausalLM needs its preprocessor (a tokenizer) to build",
    "DFineBackbone": "its tests build it through D-FINE's object detector only (anchors, "
    "denoising queries); not built from constructor arguments alone here",
    "DepthAnythingBackbone": "needs a DINOV2Backbone, whose builder computes weights from "
    "weights (covered as dinov2)",
    "Gemma3nBackbone": "needs a MobileNetV5 vision and a Gemma3n audio encoder config; "
    "not built here",
    "SAM3PromptableConceptBackbone": "needs SAM3's vision, text and geometry encoders; "
    "not built here",
}

#: Other backbones in keras_hub's source that keras_hub.models does not export.
NOT_EXPORTED = ("RQVAEBackbone", "VAEBackbone (built inside stable_diffusion_3)")


def _qwen2() -> Any:
    return _m.Qwen2Backbone(
        vocabulary_size=10,
        num_layers=2,
        num_query_heads=4,
        num_key_value_heads=2,
        hidden_dim=8,
        intermediate_dim=8,
    )


def _llama3() -> Any:
    return _m.Llama3Backbone(
        vocabulary_size=10,
        num_layers=2,
        num_query_heads=4,
        num_key_value_heads=2,
        hidden_dim=8,
        intermediate_dim=8,
        tie_word_embeddings=True,
    )


def _encoder(module: str, name: str, text: bool) -> Callable[[], Any]:
    """A CLIP, MetaCLIP 2 or SigLIP tower alone (each is a Backbone of its own)."""

    def build() -> Any:
        import importlib

        cls = getattr(importlib.import_module(f"keras_hub.src.models.{module}"), name)
        if text:
            return cls(64, 16, 16, 2, 2, 32, max_sequence_length=8)
        return cls(16, 16, 2, 2, 32, image_shape=(32, 32, 3))

    return build


_COMPOSITE["qwen2"] = _qwen2
_COMPOSITE["llama3_tied"] = _llama3
for _family, _module in (("clip", "clip"), ("metaclip_2", "metaclip_2"), ("siglip", "siglip")):
    _prefix = {"clip": "CLIP", "metaclip_2": "MetaCLIP2", "siglip": "SigLIP"}[_family]
    _COMPOSITE[f"{_family}_text"] = _encoder(
        f"{_module}.{_module}_text_encoder", f"{_prefix}TextEncoder", text=True
    )
    _COMPOSITE[f"{_family}_vision"] = _encoder(
        f"{_module}.{_module}_vision_encoder", f"{_prefix}VisionEncoder", text=False
    )

VARIANTS: tuple[str, ...] = tuple(sorted({*_PLAIN, *_COMPOSITE}))


def backbone(variant: str) -> Any:
    """A fresh tiny backbone of ``variant``."""
    if variant in _COMPOSITE:
        return _COMPOSITE[variant]()
    name, kwargs = _PLAIN[variant]
    return getattr(_m, name)(**kwargs)


def backbone_class(variant: str) -> type:
    if variant in _PLAIN:
        return getattr(_m, _PLAIN[variant][0])  # type: ignore[no-any-return]
    return type(backbone(variant))


def gemma4_assistant() -> Any:
    """Gemma4's assistant task with ordered embeddings, which holds a variable of its own
    (``token_ordering``, created non-trainable)."""
    return _m.Gemma4AssistantCausalLM(
        backbone=backbone("gemma4"),
        preprocessor=None,
        backbone_hidden_size=8,
        num_centroids=4,
        centroid_intermediate_top_k=2,
        use_ordered_embeddings=True,
    )


def tasks(variant: str) -> list[type]:
    """The task classes of keras_hub.models that take ``variant``'s backbone, by name."""
    cls = backbone_class(variant)
    found = []
    for name in dir(_m):
        task = getattr(_m, name)
        if (
            inspect.isclass(task)
            and issubclass(task, _m.Task)
            and getattr(task, "backbone_cls", None) is cls
        ):
            found.append(task)
    return sorted(set(found), key=lambda t: t.__name__)


#: Task arguments beyond ``backbone`` and ``preprocessor=None``, by class name.
_TASK_ARGUMENTS: dict[str, dict[str, Any]] = {
    "VGGImageClassifier": {"pooling": "flatten", "pooling_hidden_dim": 8},
    "Gemma4AssistantCausalLM": {
        "backbone_hidden_size": 8,
        "num_centroids": 4,
        "centroid_intermediate_top_k": 2,
        "use_ordered_embeddings": False,
    },
}


def task(task_class: type, on: Any) -> Any:
    """A task of ``task_class`` on the backbone ``on`` (``num_classes=3`` where needed)."""
    extra = _TASK_ARGUMENTS.get(task_class.__name__, {})
    try:
        return task_class(backbone=on, preprocessor=None, **extra)
    except TypeError as exc:
        if "num_classes" not in str(exc):
            raise
    return task_class(backbone=on, preprocessor=None, num_classes=3, **extra)
