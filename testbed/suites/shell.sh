# Interactive shell on the console (run-guest --interactive): exit to power off.
echo "aisio-testbed: interactive shell; 'exit' powers off"
setsid cttyhack sh
