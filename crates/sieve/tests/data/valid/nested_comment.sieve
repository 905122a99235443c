/* a /* b */ keep;
