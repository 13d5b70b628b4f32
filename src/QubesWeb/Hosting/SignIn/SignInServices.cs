using Microsoft.AspNetCore.Components.Server.Circuits;

namespace QubesWeb.Hosting.SignIn;

public static class SignInServices
{
    /// <summary>The secret, the sessions, the failed-attempt limit, the printed link and the circuits' activity.</summary>
    public static IServiceCollection AddSignIn(this IServiceCollection services)
    {
        services.AddOptions<SignInOptions>().BindConfiguration("SignIn");
        services.AddSingleton<SignInSecret>();
        services.AddSingleton<SessionStore>();
        services.AddSingleton<FailedSignIns>();
        services.AddSingleton<SignInLink>();
        services.AddHostedService(sp => sp.GetRequiredService<SignInLink>());
        services.AddHttpContextAccessor();
        services.AddScoped<CircuitHandler, SessionCircuitHandler>();
        return services;
    }
}
