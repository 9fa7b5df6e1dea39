"""LLaMA-Factory main's Megatron example configs (examples/megatron/, ff6d4d12e), as the tests use them."""

# examples/megatron/qwen3_moe_full.yaml (main ff6d4d12e): launched on 8 GPUs ("GPU memory: 8 * 78GB")
QWEN3_MOE = {"model_name_or_path": "Qwen/Qwen3-30B-A3B-Instruct-2507", "do_train": True, "stage": "sft",
             "finetuning_type": "full", "dataset": "alpaca_en_demo", "preprocessing_num_workers": 8, "cutoff_len": 4096,
             "template": "qwen3_nothink", "output_dir": "saves/mca/qwen3_moe_full", "per_device_train_batch_size": 1,
             "gradient_accumulation_steps": 8, "num_train_epochs": 2, "learning_rate": 3e-6, "logging_steps": 1,
             "save_steps": 100, "lr_scheduler_type": "constant", "bf16": True, "tensor_model_parallel_size": 1,
             "sequence_parallel": False, "pipeline_model_parallel_size": 4, "bias_activation_fusion": True,
             "apply_rope_fusion": True, "use_distributed_optimizer": True, "overlap_param_gather": True,
             "overlap_grad_reduce": True, "moe_grouped_gemm": True, "moe_token_dispatcher_type": "alltoall",
             "expert_model_parallel_size": 2, "recompute_granularity": "full"}  # fmt: skip
