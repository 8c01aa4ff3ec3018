log_level = "infoo"
