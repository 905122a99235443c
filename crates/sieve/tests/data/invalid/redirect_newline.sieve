redirect "<user@exam
ple.com>";
