// The test assembly is also a program, for what must run in a process of its own: the crash matrix's child console
// (see Crash/CrashHarness). The test runner never calls this.
namespace QubesWeb.IntegrationTests;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is [Crash.CrashHarness.Command, var dataDir, var name])
            return await Crash.CrashHarness.RunAsync(dataDir, name);
        Console.Error.WriteLine($"usage: QubesWeb.IntegrationTests {Crash.CrashHarness.Command} DATA_DIR CASE (with {Services.FaultPoints.Variable}=KIND/STEP)");
        return 2;
    }
}
