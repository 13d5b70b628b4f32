using QubesWeb;
using QubesWeb.Hosting;

try
{
    var app = QubesWebHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (StartupConfigurationException e)
{
    // A refused configuration is the user's to fix: say what, without a stack trace, and exit non-zero.
    Console.Error.WriteLine($"qubesweb: {e.Message}");
    return 2;
}
