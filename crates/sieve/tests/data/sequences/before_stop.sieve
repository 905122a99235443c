# stop ends this script only.
stop;
