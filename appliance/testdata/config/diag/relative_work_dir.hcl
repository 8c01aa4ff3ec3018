work_dir = "data/regent"
