int run_chat_template_command(int, char**) { return 2; }
