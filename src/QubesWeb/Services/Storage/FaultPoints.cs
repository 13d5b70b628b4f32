using System.Diagnostics;

namespace QubesWeb.Services.Storage;

/// <summary>
/// Crash tests' way in: with QUBESWEB_KILL_AT=NAME in the environment, the process kills itself (SIGKILL, no
/// clean-up at all) when it reaches the point NAME, so tests can prove that start-up recovery copes with a crash at
/// exactly the worst moment. Unset, as it always is outside those tests, a point costs one comparison.
/// </summary>
public static class FaultPoints
{
    public const string Variable = "QUBESWEB_KILL_AT";
    private static readonly string? KillAt = Environment.GetEnvironmentVariable(Variable);

    public static void Hit(string name)
    {
        if (KillAt is null || !string.Equals(KillAt, name, StringComparison.Ordinal)) return;
        Console.Error.WriteLine($"{Variable}={name}: killing the process here, as a crash test asked.");
        Console.Error.Flush();
        Process.GetCurrentProcess().Kill();
    }
}
