cluster  = "prod"
lg_level = "debug"
