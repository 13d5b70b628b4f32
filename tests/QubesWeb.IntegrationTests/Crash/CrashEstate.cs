// The console's services as the crash cases use them, whether the whole console runs in this process (ConsoleHost)
// or only its services run in a child process about to be killed (CrashHarness). A service provider itself, so the
// shared helpers that take one (JobRuns) take it too.
using Microsoft.Extensions.DependencyInjection;

namespace QubesWeb.IntegrationTests.Crash;

public sealed record CrashEstate(IServiceProvider Services, string DataDir) : IServiceProvider
{
    public object? GetService(Type serviceType) => Services.GetService(serviceType);

    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    public static implicit operator CrashEstate(ConsoleHost host) => new(host.Services, host.DataDir);
}
