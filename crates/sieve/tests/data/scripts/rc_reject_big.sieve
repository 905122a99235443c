require ["reject"];
# rule:[Too big]
if size :over 20K
{
	reject "Please send smaller messages.";
	stop;
}
