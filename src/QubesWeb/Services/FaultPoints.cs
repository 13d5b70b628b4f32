using System.Diagnostics;

namespace QubesWeb.Services;

/// <summary>
/// Crash tests' way in: with QUBESWEB_KILL_AT=NAME in the environment, the process kills itself (SIGKILL, no
/// clean-up at all) when it reaches the point NAME, so tests can prove that start-up recovery copes with a crash at
/// exactly the worst moment. Inside a job a point is also known by the job's kind, <c>KIND/NAME</c> (say
/// <c>shutdown/commit-renamed</c>, not the same commit as <c>update/commit-renamed</c>), so a test can aim at one
/// job's step while other jobs pass the same point. Set, the process also says on standard error each point it
/// reaches (<see cref="ReachedLine"/>). Unset, as it always is outside those tests, a point costs one comparison.
/// </summary>
public static class FaultPoints
{
    public const string Variable = "QUBESWEB_KILL_AT";
    private static readonly string? KillAt = Environment.GetEnvironmentVariable(Variable);
    private static readonly AsyncLocal<string?> CurrentJobKind = new();

    /// <summary>
    /// The job engine calls this as a job starts running: points hit from here on, on this flow of the job, are also
    /// named <c>KIND/NAME</c>. An async method's change to the value does not reach its caller, so nothing is undone.
    /// </summary>
    public static void EnterJob(string kind)
    {
        if (KillAt is not null) CurrentJobKind.Value = kind;
    }

    /// <summary>What a crash test's process prints on standard error for each point it reaches, <c>KIND/NAME</c> inside a job.</summary>
    public const string ReachedLine = "QUBESWEB_KILL_AT reached ";

    public static void Hit(string name)
    {
        if (KillAt is null) return;
        var kind = CurrentJobKind.Value;
        // Every point reached is said, so the crash matrix learns the steps a job takes and can tell which it never aims at.
        Console.Error.WriteLine(ReachedLine + (kind is null ? name : kind + "/" + name));
        var hit = string.Equals(KillAt, name, StringComparison.Ordinal)
                  || (kind is not null && string.Equals(KillAt, kind + "/" + name, StringComparison.Ordinal));
        if (!hit) return;
        Console.Error.WriteLine($"{Variable}={KillAt}: killing the process here, as a crash test asked.");
        Console.Error.Flush();
        Process.GetCurrentProcess().Kill();
    }
}
